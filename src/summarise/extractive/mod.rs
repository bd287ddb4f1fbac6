//! The built-in extractive summariser: picks a document's central sentences with TextRank,
//! offline and deterministic, so summaries work with no provider configured or reachable.
//!
//! The text is split into sentences (abbreviations, decimals, blank lines and list items
//! handled), each sentence becomes a set of lowercase words without stop words, sentences are
//! ranked by TextRank over word overlap plus a small prior for the opening ones, and the best
//! that fit the budget are joined in document order.

mod rank;
mod sentences;
mod words;

#[cfg(test)]
mod fixtures;

use rank::Analysis;
use sentences::split_sentences;

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
    use super::fixtures::{ARTICLE, fifty_kilobytes, options, sentences};
    use super::rank::MAX_GRAPH_SENTENCES;
    use super::sentences::MAX_SENTENCE_CHARS;
    use super::*;

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
