//! Sentence splitting for the extractive summariser: paragraphs, headings and list items are
//! blocks, and blocks are cut at sentence ends, minding abbreviations, initials and decimals.

use std::ops::Range;

/// Sentences longer than this many characters are cut into pieces, so a wall of unpunctuated
/// text becomes several candidates rather than one that never fits.
pub(super) const MAX_SENTENCE_CHARS: usize = 600;

/// Byte ranges of the sentences of `text`, trimmed, in document order.
pub(super) fn split_sentences(text: &str) -> Vec<Range<usize>> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::sentences;

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
}
