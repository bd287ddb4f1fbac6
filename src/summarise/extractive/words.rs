//! Words and languages for the extractive summariser: lowercase words (Han and kana one
//! character each) and the built-in English and German stop-word lists.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Call `f` with each lowercase word of `s`. Han and kana characters are words of their own,
/// since those scripts put no spaces between words.
pub(super) fn for_each_word(s: &str, mut f: impl FnMut(&str)) {
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
pub(super) enum Lang {
    English,
    German,
}

impl Lang {
    /// The language an ISO 639 code names, if it has a list.
    pub(super) fn from_code(code: &str) -> Option<Self> {
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
    pub(super) fn detect<'a>(words: impl Iterator<Item = (&'a str, u32)>) -> Option<Self> {
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

    pub(super) fn stop_words(self) -> &'static HashSet<&'static str> {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::fixtures::{ARTICLE, GERMAN};
    use super::*;

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
}
