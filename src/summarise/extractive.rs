//! The built-in extractive summariser: picks a document's central sentences with TextRank,
//! offline and deterministic, so summaries work with no provider configured or reachable.
//!
//! The text is split into sentences (abbreviations, decimals, blank lines and list items
//! handled), each sentence becomes a set of lowercase words without stop words, sentences are
//! ranked by TextRank over word overlap plus a small prior for the opening ones, and the best
//! that fit the budget are joined in document order.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

/// Sentences longer than this many characters are cut into pieces, so a wall of unpunctuated
/// text becomes several candidates rather than one that never fits.
const MAX_SENTENCE_CHARS: usize = 600;
/// TextRank compares every pair of sentences, so longer documents are first narrowed to this
/// many by a cheap term-frequency score; 400 keeps a 50 KB text at a few milliseconds.
const MAX_GRAPH_SENTENCES: usize = 400;
/// The usual PageRank damping factor.
const DAMPING: f64 = 0.85;
const MAX_ITERATIONS: usize = 30;
const CONVERGED: f64 = 1e-6;
/// Added to the normalised scores (best = 1.0) of the first sentences: openings often state
/// the topic, but the prior stays small so it only settles near-ties.
const POSITION_PRIOR: [f64; 3] = [0.15, 0.08, 0.04];
/// Sentences with fewer words (headings, list fragments) are chosen only if nothing is longer.
const MIN_WORDS: usize = 4;
/// Sentences sharing at least this share of their content words (Jaccard) say the same thing,
/// so only the better one is kept; 0.6 still catches a sentence repeated with another figure
/// and name, which documents built from templates (listings, reports) are full of.
const REDUNDANT: f64 = 0.6;

/// How long a summary may be and which stop words to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractiveOptions {
    /// At most this many sentences.
    pub max_sentences: usize,
    /// At most this many characters (Unicode scalar values) of summary text.
    pub max_chars: usize,
    /// The document's language as ISO 639-1 (`en`, `de`), which picks a stop-word list;
    /// `None` detects between the built-in lists, and other languages use none.
    pub language: Option<String>,
}

impl Default for ExtractiveOptions {
    fn default() -> Self {
        Self {
            max_sentences: 5,
            max_chars: 1200,
            language: None,
        }
    }
}

/// An extractive summary: whole sentences of the input, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The chosen sentences with whitespace collapsed, joined by spaces. When no sentence fits
    /// `max_chars`, the best one cut to fit and ending in "…".
    pub text: String,
    /// Indices of the chosen sentences among all sentences, in document order.
    pub sentences: Vec<usize>,
    /// The chosen sentences themselves, in document order (`text` joins them).
    pub picked: Vec<String>,
    /// How many sentences the input was split into.
    pub total_sentences: usize,
}

/// Summarise `text` by picking its most central sentences.
pub fn summarise(text: &str, opts: &ExtractiveOptions) -> Summary {
    let ranges = split_sentences(text);
    let mut summary = Summary {
        total_sentences: ranges.len(),
        ..Summary::default()
    };
    if ranges.is_empty() || opts.max_sentences == 0 || opts.max_chars == 0 {
        return summary;
    }
    let analysis = Analysis::new(text, &ranges, opts.language.as_deref());
    let ranked = analysis.rank();
    let mut chosen: Vec<(usize, String)> = Vec::new();
    let mut used = 0;
    for &i in &ranked {
        if chosen.len() == opts.max_sentences {
            break;
        }
        let sentence = collapse_whitespace(&text[ranges[i].clone()]);
        let extra = sentence.chars().count() + usize::from(!chosen.is_empty());
        let repeats = (chosen.iter()).any(|(c, s)| *s == sentence || analysis.redundant(*c, i));
        // A lower-ranked shorter sentence may still fit where a long one did not.
        if used + extra <= opts.max_chars && !repeats {
            used += extra;
            chosen.push((i, sentence));
        }
    }
    if let (true, Some(&best)) = (chosen.is_empty(), ranked.first()) {
        // Every candidate is over the budget: cut the best one rather than return nothing.
        let sentence = collapse_whitespace(&text[ranges[best].clone()]);
        chosen.push((best, truncate_chars(&sentence, opts.max_chars)));
    }
    chosen.sort_by_key(|(i, _)| *i);
    summary.sentences = chosen.iter().map(|(i, _)| *i).collect();
    summary.picked = chosen.into_iter().map(|(_, s)| s).collect();
    summary.text = summary.picked.join(" ");
    summary
}

/// Byte ranges of the sentences of `text`, trimmed, in document order.
fn split_sentences(text: &str) -> Vec<Range<usize>> {
    let mut sentences = Vec::new();
    for block in blocks(text) {
        split_block(text, block, &mut sentences);
    }
    sentences
}

/// Byte ranges of the paragraphs, list items and headings of `text`: a blank line or a list
/// marker ends a block, and a heading is a block of its own. Markers are left out.
fn blocks(text: &str) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    let mut current: Option<Range<usize>> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let content = line.trim();
        if content.is_empty() {
            blocks.extend(current.take());
            continue;
        }
        let start = line_start + (line.len() - line.trim_start().len());
        let end = start + content.len();
        match (block_marker(content), &mut current) {
            (Some(marker), _) => {
                blocks.extend(current.take());
                if content.starts_with('#') {
                    blocks.push(start + marker..end);
                } else {
                    current = Some(start + marker..end);
                }
            }
            (None, Some(block)) => block.end = end,
            (None, None) => current = Some(start..end),
        }
    }
    blocks.extend(current);
    blocks
}

/// Length of the Markdown heading hashes or list marker opening `line`, with its space.
fn block_marker(line: &str) -> Option<usize> {
    let body = line.trim_start_matches('#');
    if (1..=6).contains(&(line.len() - body.len())) && body.starts_with(' ') {
        return Some(line.len() - body.trim_start().len());
    }
    if let Some(bullet) = ["- ", "* ", "+ ", "• ", "– "]
        .iter()
        .find(|b| line.starts_with(*b))
    {
        return Some(bullet.len());
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let bytes = line.as_bytes();
    let numbered = (1..=3).contains(&digits)
        && matches!(bytes.get(digits), Some(b'.' | b')'))
        && bytes.get(digits + 1) == Some(&b' ');
    numbered.then_some(digits + 2)
}

/// Split one block at its sentence ends, pushing the sentences onto `out`.
fn split_block(text: &str, block: Range<usize>, out: &mut Vec<Range<usize>>) {
    let s = &text[block.clone()];
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_terminator(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if !is_terminator(d) && !is_closer(d) {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        // CJK full stops need no space after them.
        if matches!(c, '。' | '！' | '？') || ends_sentence(s, i, c, end) {
            push_sentence(text, block.start + start..block.start + end, out);
            start = end;
        }
    }
    push_sentence(text, block.start + start..block.end, out);
}

/// Whether the terminator `c` at byte `i` of `s`, whose run of terminators and closing quotes
/// ends at `end`, ends a sentence: whitespace and a sentence start must follow, and a full stop
/// must not close an abbreviation or an initial.
fn ends_sentence(s: &str, i: usize, c: char, end: usize) -> bool {
    let rest = &s[end..];
    let after_space = rest.trim_start();
    // No space after it: a decimal ("3.5") or a domain name, not a sentence end.
    if after_space.len() == rest.len() {
        return false;
    }
    let Some(next) = after_space.chars().next() else {
        return false;
    };
    // Caseless scripts count as a sentence start, so only a lowercase letter continues.
    let starts =
        next.is_numeric() || is_opener(next) || (next.is_alphabetic() && !next.is_lowercase());
    let word = s[..i]
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default();
    starts && !(c == '.' && is_abbreviation(word.trim_start_matches(is_opener)))
}

/// Whether `word`, just before a full stop, is an abbreviation ("Dr", "e.g", "U.S") or an
/// initial ("J").
fn is_abbreviation(word: &str) -> bool {
    const ABBREVIATIONS: &str = "\
        al approx apr aug bspw bzw ca capt cf co col corp dec dept dr evtl feb fig figs fr gen \
        ggf gov hr inc inkl jan jr jul jun lt ltd mio mr mrd mrs ms mt nov nr oct prof rep rev \
        sen sep sept sgt sog sr st str tel vgl vol vols vs";
    let mut chars = word.chars();
    if chars.next().is_some_and(char::is_alphabetic) && chars.next().is_none() {
        return true;
    }
    if word.contains('.') {
        return word.split('.').all(|part| {
            (1..=3).contains(&part.chars().count()) && part.chars().all(char::is_alphabetic)
        });
    }
    let word = word.to_lowercase();
    ABBREVIATIONS.split_whitespace().any(|a| a == word)
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | '“' | '»' | '«' | ')' | ']' | '）' | '」' | '』' | '*' | '_'
    )
}

fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '‘' | '„' | '«' | '»' | '(' | '[' | '¿' | '¡' | '「' | '*' | '_'
    )
}

/// Push `range` trimmed onto `out`, cut into pieces of at most [`MAX_SENTENCE_CHARS`].
fn push_sentence(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let mut rest = trim_range(text, range);
    while !rest.is_empty() {
        let piece = &text[rest.clone()];
        let Some((cut, _)) = piece.char_indices().nth(MAX_SENTENCE_CHARS) else {
            out.push(rest);
            return;
        };
        // Cut at the last space before the cap unless that leaves a stub.
        let at = piece[..cut]
            .rfind(char::is_whitespace)
            .filter(|&p| p > cut / 2)
            .unwrap_or(cut);
        out.push(trim_range(text, rest.start..rest.start + at));
        rest = trim_range(text, rest.start + at..rest.end);
    }
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let s = &text[range.clone()];
    let start = range.start + (s.len() - s.trim_start().len());
    start..start + s.trim().len()
}

/// Call `f` with each lowercase word of `s`. Han and kana characters are words of their own,
/// since those scripts put no spaces between words.
fn for_each_word(s: &str, mut f: impl FnMut(&str)) {
    let mut word = String::new();
    let mut emit = |word: &mut String| {
        if !word.is_empty() {
            f(word);
            word.clear();
        }
    };
    for c in s.chars() {
        if is_ideograph(c) {
            emit(&mut word);
            word.push(c);
            emit(&mut word);
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else {
            emit(&mut word);
        }
    }
    emit(&mut word);
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF
        | 0x2_0000..=0x2_FA1F)
}

/// A language with a built-in stop-word list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    English,
    German,
}

impl Lang {
    /// The language an ISO 639 code names, if it has a list.
    fn from_code(code: &str) -> Option<Self> {
        let code = code
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match code.as_str() {
            "en" | "eng" => Some(Self::English),
            "de" | "deu" | "ger" => Some(Self::German),
            _ => None,
        }
    }

    /// The language whose stop words make up the larger share of the text, if either makes up
    /// a share typical of prose; `words` are the distinct words with their counts.
    fn detect<'a>(words: impl Iterator<Item = (&'a str, u32)>) -> Option<Self> {
        let (mut total, mut english, mut german) = (0u64, 0u64, 0u64);
        for (word, count) in words {
            let count = u64::from(count);
            total += count;
            english += if ENGLISH.contains(word) { count } else { 0 };
            german += if GERMAN.contains(word) { count } else { 0 };
        }
        // Stop words are a third or more of real prose; a twentieth rules out chance hits.
        let (lang, hits) = if german > english {
            (Self::German, german)
        } else {
            (Self::English, english)
        };
        (hits >= 2 && hits * 20 >= total).then_some(lang)
    }

    fn stop_words(self) -> &'static HashSet<&'static str> {
        match self {
            Self::English => &ENGLISH,
            Self::German => &GERMAN,
        }
    }
}

static ENGLISH: LazyLock<HashSet<&str>> =
    LazyLock::new(|| ENGLISH_WORDS.split_whitespace().collect());
static GERMAN: LazyLock<HashSet<&str>> =
    LazyLock::new(|| GERMAN_WORDS.split_whitespace().collect());

const ENGLISH_WORDS: &str = "\
a about above after again against all also am an and any are aren as at be because been before \
being below between both but by can could did didn do does doesn doing don down during each few \
for from further had has have having he her here hers herself him himself his how however i if \
in into is isn it its itself just may me might more most must my myself no nor not now of off on \
once only or other our ours ourselves out over own same shall she should so some such than that \
the their theirs them themselves then there these they this those through to too under until up \
upon us very via was wasn we were what when where which while who whom why will with would yet \
you your yours yourself yourselves";

const GERMAN_WORDS: &str = "\
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes \
auch auf aus bei bin bis bist da damit dann das dass dem den denn der des dich die dies diese \
diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines er es etwas \
euch euer für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen \
ihr ihre ihrem ihren ihrer im in indem ins ist jede jedem jeden jeder jedes jene jetzt kann kein \
keine können könnte man manche mein meine mich mir mit muss nach nicht nichts noch nun nur ob \
oder ohne sehr sein seine sich sie sind so solche soll sollte sondern sonst über um und uns \
unter viel vom von vor war waren warum was weil welche wenn wer werden wie wieder will wir wird \
wirst wo wurde wurden zu zum zur zwar zwischen";

/// The words of every sentence, ready for ranking.
struct Analysis {
    /// How often each word id occurs in the whole text.
    frequency: Vec<u32>,
    /// Each sentence's content words as sorted, distinct word ids.
    sets: Vec<Vec<u32>>,
    /// Each sentence's number of words, stop words included.
    lengths: Vec<usize>,
}

impl Analysis {
    fn new(text: &str, ranges: &[Range<usize>], language: Option<&str>) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let (mut words, mut frequency) = (Vec::new(), Vec::<u32>::new());
        let mut tokens = Vec::with_capacity(ranges.len());
        for range in ranges {
            let mut sentence = Vec::new();
            for_each_word(&text[range.clone()], |word| {
                let id = match ids.get(word) {
                    Some(&id) => id,
                    None => {
                        let id = words.len() as u32;
                        ids.insert(word.to_owned(), id);
                        words.push(word.to_owned());
                        frequency.push(0);
                        id
                    }
                };
                frequency[id as usize] += 1;
                sentence.push(id);
            });
            tokens.push(sentence);
        }
        let language = match language.filter(|code| !code.is_empty()) {
            Some(code) => Lang::from_code(code),
            None => Lang::detect(
                words
                    .iter()
                    .map(String::as_str)
                    .zip(frequency.iter().copied()),
            ),
        };
        let stop = language.map(Lang::stop_words);
        let is_stop = |w: &str| stop.is_some_and(|stop| stop.contains(w));
        // One Latin letter is a fragment ("don't" gives "t"), not a word.
        let ignored: Vec<bool> = (words.iter())
            .map(|w| is_stop(w) || (w.len() == 1 && w.is_ascii()))
            .collect();
        let lengths = tokens.iter().map(Vec::len).collect();
        let sets = (tokens.into_iter())
            .map(|mut sentence| {
                sentence.retain(|&id| !ignored[id as usize]);
                sentence.sort_unstable();
                sentence.dedup();
                sentence
            })
            .collect();
        Self {
            frequency,
            sets,
            lengths,
        }
    }

    /// Candidate sentence indices, best first. Candidates are the sentences long enough to
    /// stand alone, or all of them when none is.
    fn rank(&self) -> Vec<usize> {
        let n = self.sets.len();
        let mut candidates: Vec<usize> = (0..n).filter(|&i| self.lengths[i] >= MIN_WORDS).collect();
        if candidates.is_empty() {
            candidates = (0..n).collect();
        }
        // The prior goes to the first candidates, so a title or byline does not take it.
        let opening = &candidates[..candidates.len().min(POSITION_PRIOR.len())];
        let graph = self.graph_members(opening);
        let sets: Vec<&[u32]> = graph.iter().map(|&i| self.sets[i].as_slice()).collect();
        let raw = text_rank(&sets);
        let best = raw.iter().copied().fold(0.0, f64::max);
        let mut scored: Vec<(usize, f64)> = (graph.iter().zip(raw))
            .filter(|(i, _)| candidates.binary_search(i).is_ok())
            .map(|(&i, score)| {
                let prior =
                    (opening.iter().position(|&o| o == i)).map_or(0.0, |p| POSITION_PRIOR[p]);
                let score = if best > 0.0 { score / best } else { 0.0 } + prior;
                // Rounded so that copies of a sentence, equal but for summation order, tie
                // and the earliest wins.
                (i, (score * 1e9).round())
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.into_iter().map(|(i, _)| i).collect()
    }

    /// The sentences TextRank compares, in document order: all of them, or the `opening` ones
    /// and those with the most frequent words when there are too many.
    fn graph_members(&self, opening: &[usize]) -> Vec<usize> {
        let n = self.sets.len();
        if n <= MAX_GRAPH_SENTENCES {
            return (0..n).collect();
        }
        let mut scored: Vec<(usize, f64)> = (0..n)
            .filter(|i| !opening.contains(i))
            .map(|i| (i, self.tf_score(i)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let rest = scored.into_iter().take(MAX_GRAPH_SENTENCES - opening.len());
        let mut members: Vec<usize> = opening
            .iter()
            .copied()
            .chain(rest.map(|(i, _)| i))
            .collect();
        members.sort_unstable();
        members
    }

    /// Total document frequency of a sentence's content words, damped for long sentences.
    fn tf_score(&self, i: usize) -> f64 {
        let set = &self.sets[i];
        let sum: f64 = set
            .iter()
            .map(|&id| f64::from(self.frequency[id as usize]))
            .sum();
        if set.is_empty() {
            0.0
        } else {
            sum / (set.len() as f64).sqrt()
        }
    }

    /// Whether sentences `a` and `b` share most of their content words.
    fn redundant(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.sets[a], &self.sets[b]);
        let shared = overlap(a, b);
        let union = a.len() + b.len() - shared;
        union > 0 && shared as f64 >= REDUNDANT * union as f64
    }
}

/// TextRank scores of sentences given as sorted word-id sets.
fn text_rank(sets: &[&[u32]]) -> Vec<f64> {
    let n = sets.len();
    let mut weights = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let w = similarity(sets[i], sets[j]);
            weights[i * n + j] = w;
            weights[j * n + i] = w;
        }
    }
    let out: Vec<f64> = weights
        .chunks(n.max(1))
        .map(|row| row.iter().sum())
        .collect();
    let mut scores = vec![1.0; n];
    let mut share = vec![0.0; n];
    for _ in 0..MAX_ITERATIONS {
        for ((share, score), out) in share.iter_mut().zip(&scores).zip(&out) {
            *share = if *out > 0.0 { score / out } else { 0.0 };
        }
        let mut delta: f64 = 0.0;
        // The weights are symmetric, so row i also holds the edges into sentence i.
        for (row, score) in weights.chunks(n.max(1)).zip(scores.iter_mut()) {
            let incoming: f64 = row.iter().zip(&share).map(|(w, s)| w * s).sum();
            let next = (1.0 - DAMPING) + DAMPING * incoming;
            delta = delta.max((next - *score).abs());
            *score = next;
        }
        if delta < CONVERGED {
            break;
        }
    }
    scores
}

/// Shared words over the sum of the log sizes (plus one, so one-word sets divide by more
/// than zero), as in the TextRank paper.
fn similarity(a: &[u32], b: &[u32]) -> f64 {
    let shared = overlap(a, b);
    if shared == 0 {
        return 0.0;
    }
    shared as f64 / ((a.len() as f64 + 1.0).ln() + (b.len() as f64 + 1.0).ln())
}

/// Number of ids in both sorted, distinct slices.
fn overlap(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` cut to at most `max` characters ending in "…", at a space when one is near the end.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let Some(keep) = max.checked_sub(1) else {
        return String::new();
    };
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    let head = &s[..cut];
    let head = head
        .rfind(' ')
        .filter(|&p| p > cut * 2 / 3)
        .map_or(head, |p| &head[..p]);
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = "\
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

    const GERMAN: &str = "\
Die Honigbiene lebt in einem Volk, das im Sommer aus mehreren zehntausend Bienen besteht. Die \
Königin legt jeden Tag bis zu zweitausend Eier, und die Arbeiterinnen versorgen die Brut. Im \
Alter von etwa drei Wochen fliegen die Bienen aus und sammeln Nektar und Pollen. Mit dem \
Schwänzeltanz zeigen sie den anderen Bienen, wo die Blüten zu finden sind. Im Winter bilden \
die Bienen eine Traube und wärmen sich gegenseitig.";

    fn options(max_sentences: usize, max_chars: usize) -> ExtractiveOptions {
        ExtractiveOptions {
            max_sentences,
            max_chars,
            language: None,
        }
    }

    fn sentences(text: &str) -> Vec<String> {
        let ranges = split_sentences(text);
        ranges
            .into_iter()
            .map(|r| collapse_whitespace(&text[r]))
            .collect()
    }

    /// The article repeated with a varied sentence after each copy, to about 50 KB.
    fn fifty_kilobytes() -> String {
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

    #[test]
    fn article_summary_is_whole_sentences_in_order_and_states_the_topic() {
        let all = sentences(ARTICLE);

        let summary = summarise(ARTICLE, &options(3, 600));

        assert!(!summary.text.is_empty());
        assert!(summary.text.len() < ARTICLE.len() / 2);
        assert!(summary.text.chars().count() <= 600);
        assert_eq!(summary.total_sentences, all.len());
        assert!(summary.sentences.len() <= 3);
        assert!(summary.sentences.windows(2).all(|w| w[0] < w[1]));
        let picked: Vec<&str> = summary.sentences.iter().map(|&i| all[i].as_str()).collect();
        assert_eq!(summary.text, picked.join(" "));
        assert!(picked.iter().all(|s| s.ends_with('.')), "{picked:?}");
        assert!(
            summary
                .text
                .contains("Honeybee colonies are superorganisms"),
            "{}",
            summary.text
        );
    }

    #[test]
    fn abbreviations_initials_and_decimals_do_not_split_sentences() {
        let text = "Dr. Smith measured 3.5 kg, e.g. in the U.S. Army lab at 5 p.m. on Jan. 3. \
                    J. R. R. Tolkien wrote it! Did he? \"Yes,\" she said. Version 2.0. Then more.";

        assert_eq!(
            sentences(text),
            [
                "Dr. Smith measured 3.5 kg, e.g. in the U.S. Army lab at 5 p.m. on Jan. 3.",
                "J. R. R. Tolkien wrote it!",
                "Did he?",
                "\"Yes,\" she said.",
                "Version 2.0.",
                "Then more.",
            ]
        );
    }

    #[test]
    fn blank_lines_headings_and_list_items_end_sentences() {
        let text = "# Bees at work\nIntro line one\ncontinues here\n\nA paragraph.\n- first item\n\
                    - second item\n2. numbered item";

        assert_eq!(
            sentences(text),
            [
                "Bees at work",
                "Intro line one continues here",
                "A paragraph.",
                "first item",
                "second item",
                "numbered item"
            ]
        );
    }

    #[test]
    fn a_title_before_the_text_is_not_chosen() {
        let text = format!("# Honeybees\nBy A. Writer\n\n{ARTICLE}");

        let summary = summarise(&text, &options(3, 600));

        assert!(
            summary
                .text
                .starts_with("Honeybee colonies are superorganisms"),
            "{}",
            summary.text
        );
    }

    #[test]
    fn empty_and_whitespace_only_input_give_an_empty_summary() {
        for text in ["", "   ", "\n\n\t \n"] {
            let summary = summarise(text, &ExtractiveOptions::default());

            assert_eq!(summary, Summary::default(), "{text:?}");
        }
    }

    #[test]
    fn text_without_sentence_punctuation_is_one_sentence() {
        let text = "a note without any punctuation that still says something useful";

        let summary = summarise(text, &ExtractiveOptions::default());

        assert_eq!(summary.text, text);
        assert_eq!((summary.sentences, summary.total_sentences), (vec![0], 1));
    }

    #[test]
    fn huge_sentences_are_capped_and_cut_on_a_char_boundary_with_an_ellipsis() {
        for text in ["wörd ".repeat(5_000), "ü".repeat(5_000)] {
            let summary = summarise(&text, &options(3, 100));

            assert!(summary.total_sentences >= 5_000 / MAX_SENTENCE_CHARS);
            assert!(summary.text.ends_with('…'), "{}", summary.text);
            assert!(summary.text.chars().count() <= 100);
        }
    }

    #[test]
    fn non_latin_scripts_are_summarised_without_panicking() {
        let texts = [
            "蜜蜂是群居昆虫。一个蜂群有一只蜂王和数万只工蜂。工蜂采集花蜜和花粉！蜂王每天产卵？",
            "Пчёлы живут семьями. Семья состоит из матки и рабочих пчёл. Пчёлы собирают нектар.",
            "النحل يعيش في مستعمرات. تضع الملكة البيض كل يوم. تجمع العاملات الرحيق من الأزهار.",
            "🐝🐝🐝 ... ¿Qué? ¡Sí! 🍯",
        ];
        for text in texts {
            let summary = summarise(text, &options(2, 40));

            assert!(!summary.text.is_empty(), "{text}");
            assert!(summary.text.chars().count() <= 40, "{}", summary.text);
        }
        assert_eq!(sentences(texts[0]).len(), 4);
        assert_eq!(sentences(texts[1]).len(), 3);
    }

    #[test]
    fn german_text_is_detected_as_german_and_english_as_english() {
        let detect = |text: &str| {
            let mut counts: HashMap<String, u32> = HashMap::new();
            for_each_word(text, |w| *counts.entry(w.to_owned()).or_default() += 1);
            Lang::detect(counts.iter().map(|(w, &c)| (w.as_str(), c)))
        };

        assert_eq!(detect(GERMAN), Some(Lang::German));
        assert_eq!(detect(ARTICLE), Some(Lang::English));
        assert_eq!(detect("蜜蜂是群居昆虫。"), None);
    }

    #[test]
    fn german_text_uses_the_german_stop_words() {
        let ranges = split_sentences(GERMAN);
        let content_words = |language| Analysis::new(GERMAN, &ranges, language).sets[1].len();

        // "Die Königin legt jeden Tag bis zu zweitausend Eier, und die Arbeiterinnen versorgen
        // die Brut." keeps 8 of its 13 distinct words once "die jeden bis zu und" are dropped.
        assert_eq!(content_words(None), 8);
        assert_eq!(content_words(Some("de")), 8);
        assert_eq!(content_words(Some("de-AT")), 8);
        assert_eq!(content_words(Some("fr")), 13);
        let summary = summarise(GERMAN, &options(2, 400));
        assert_eq!(summary.sentences.len(), 2);
    }

    #[test]
    fn fifty_kilobyte_input_respects_the_limits_and_repeats_no_sentence() {
        let text = fifty_kilobytes();

        let summary = summarise(&text, &options(8, 1200));

        assert!(summary.total_sentences > MAX_GRAPH_SENTENCES);
        assert!(!summary.sentences.is_empty() && summary.sentences.len() <= 8);
        assert!(summary.text.chars().count() <= 1200);
        let all = sentences(&text);
        let mut picked: Vec<&str> = summary.sentences.iter().map(|&i| all[i].as_str()).collect();
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), summary.sentences.len());
    }

    #[test]
    fn max_sentences_and_max_chars_bound_the_summary() {
        assert_eq!(summarise(ARTICLE, &options(1, 1000)).sentences.len(), 1);
        assert!(summarise(ARTICLE, &options(0, 1000)).text.is_empty());
        assert!(summarise(ARTICLE, &options(5, 0)).text.is_empty());
        assert!(summarise(ARTICLE, &options(20, 150)).text.chars().count() <= 150);
    }

    #[test]
    fn same_input_gives_the_same_summary() {
        let text = fifty_kilobytes();

        let first = summarise(&text, &options(6, 1000));
        let second = summarise(&text, &options(6, 1000));

        assert_eq!(first, second);
        assert_eq!(
            summarise(ARTICLE, &options(3, 600)),
            summarise(ARTICLE, &options(3, 600))
        );
    }
}
