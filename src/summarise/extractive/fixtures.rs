//! Texts and helpers the extractive summariser's tests share.

use super::sentences::split_sentences;
use super::{ExtractiveOptions, collapse_whitespace};

/// An English article about honeybees, in six paragraphs.
pub(super) const ARTICLE: &str = "\
Honeybee colonies are superorganisms in which thousands of bees cooperate to survive as a \
single unit. A healthy colony in summer holds one queen, a few hundred drones and 20,000 to \
60,000 workers. The queen lays up to 2,000 eggs a day, e.g. during the spring build-up, while \
the workers feed the larvae, build comb and defend the nest.

Workers change jobs as they age. Young bees clean cells and nurse the brood, middle-aged bees \
build wax comb and store nectar, and the oldest bees forage outside the hive. A forager may fly \
3.5 km or more from the colony to reach flowers, and she returns with nectar, pollen, water or \
resin.

Foragers share what they find with the rest of the colony through the waggle dance. Dr. Karl \
von Frisch, an Austrian zoologist, showed that the angle of the dance on the vertical comb \
encodes the direction of the food relative to the sun. The duration of the waggle run encodes \
the distance. Other bees follow the dancer, learn the location and fly out to the same \
flowers, so the colony quickly concentrates its foragers on the richest sources.

Nectar becomes honey inside the hive. House bees add enzymes, spread the nectar in thin layers \
and fan their wings until the water content falls below about 18.5 per cent. Honey stored this \
way keeps for years and feeds the colony through winter, when no flowers bloom. In winter the \
bees form a tight cluster and shiver their flight muscles to keep the centre warm.

Colonies reproduce by swarming. In late spring the old queen leaves with roughly half of the \
workers, and a new queen takes over the original hive. Scout bees search for a new nest site, \
and the swarm chooses among the candidates by a kind of vote among the scouts.

Honeybees matter to people far beyond honey. In the U.S. alone, managed honeybee colonies \
pollinate crops worth billions of dollars each year, from almonds to apples. Beekeepers today \
struggle with the varroa mite, pesticides and poor forage, which is why the health of honeybee \
colonies is watched closely by farmers and scientists alike.
";

/// A German paragraph about honeybees, five sentences.
pub(super) const GERMAN: &str = "\
Die Honigbiene lebt in einem Volk, das im Sommer aus mehreren zehntausend Bienen besteht. Die \
Königin legt jeden Tag bis zu zweitausend Eier, und die Arbeiterinnen versorgen die Brut. Im \
Alter von etwa drei Wochen fliegen die Bienen aus und sammeln Nektar und Pollen. Mit dem \
Schwänzeltanz zeigen sie den anderen Bienen, wo die Blüten zu finden sind. Im Winter bilden \
die Bienen eine Traube und wärmen sich gegenseitig.";

/// Options with these bounds and the language detected.
pub(super) fn options(max_sentences: usize, max_chars: usize) -> ExtractiveOptions {
    ExtractiveOptions {
        max_sentences,
        max_chars,
        language: None,
    }
}

/// The sentences of `text`, whitespace collapsed.
pub(super) fn sentences(text: &str) -> Vec<String> {
    let ranges = split_sentences(text);
    ranges
        .into_iter()
        .map(|r| collapse_whitespace(&text[r]))
        .collect()
}

/// The article repeated with a varied sentence after each copy, to about 50 KB.
pub(super) fn fifty_kilobytes() -> String {
    let mut text = String::new();
    for k in 0.. {
        if text.len() >= 50_000 {
            break;
        }
        text.push_str(ARTICLE);
        let line = format!(
            "\nSurvey {k} counted {} colonies near village {} after the {} harvest.\n\n",
            k * 37 % 101,
            k % 13,
            ["spring", "summer", "autumn"][k % 3]
        );
        text.push_str(&line);
    }
    text
}
