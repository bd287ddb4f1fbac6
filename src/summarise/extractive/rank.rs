//! Ranking for the extractive summariser: each sentence's content words, TextRank over their
//! overlap with a small prior for the opening sentences, and the test for redundant pairs.

use std::collections::HashMap;
use std::ops::Range;

use super::words::{Lang, for_each_word};

/// TextRank compares every pair of sentences, so longer documents are first narrowed to this
/// many by a cheap term-frequency score; 400 keeps a 50 KB text at a few milliseconds.
pub(super) const MAX_GRAPH_SENTENCES: usize = 400;
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

/// The words of every sentence, ready for ranking.
pub(super) struct Analysis {
    /// How often each word id occurs in the whole text.
    frequency: Vec<u32>,
    /// Each sentence's content words as sorted, distinct word ids.
    pub(super) sets: Vec<Vec<u32>>,
    /// Each sentence's number of words, stop words included.
    lengths: Vec<usize>,
}

impl Analysis {
    pub(super) fn new(text: &str, ranges: &[Range<usize>], language: Option<&str>) -> Self {
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
    pub(super) fn rank(&self) -> Vec<usize> {
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
    pub(super) fn redundant(&self, a: usize, b: usize) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{GERMAN, options};
    use super::super::sentences::split_sentences;
    use super::super::summarise;
    use super::*;

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
}
