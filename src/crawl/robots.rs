//! `robots.txt` (RFC 9309): the group for our user agent (`workhorse`), else `*`; `Allow` and
//! `Disallow` by longest match (`Allow` wins a tie), with `*` and `$` patterns; `Crawl-delay`;
//! and the `Sitemap` lines.

use serde::{Deserialize, Serialize};

/// The product token crawls identify as in `robots.txt` groups.
pub const USER_AGENT: &str = "workhorse";
/// Longest `Crawl-delay` honoured, in milliseconds (a site asking for more gets this).
pub const MAX_DELAY_MS: u64 = 60_000;

/// The rules of one site for our user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Robots {
    /// `(allow, pattern)` of the group that applies, in file order.
    pub rules: Vec<(bool, String)>,
    /// `Crawl-delay`, in milliseconds.
    pub delay_ms: Option<u64>,
    /// `Sitemap` URLs, in file order.
    pub sitemaps: Vec<String>,
}

impl Robots {
    /// The rules in `text` that apply to [`USER_AGENT`].
    pub fn parse(text: &str) -> Self {
        // Groups: the agents named by consecutive user-agent lines, then their rules.
        let mut groups: Vec<Group> = Vec::new();
        let mut sitemaps = Vec::new();
        let mut open_agents = false;
        for line in text.trim_start_matches('\u{feff}').lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => {
                    if !open_agents {
                        groups.push((Vec::new(), Vec::new(), None));
                    }
                    open_agents = true;
                    if let Some(group) = groups.last_mut() {
                        group.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    open_agents = false;
                    if let Some(group) = groups.last_mut()
                        && !value.is_empty()
                    {
                        group.1.push((key == "allow", canonical(value)));
                    }
                }
                "crawl-delay" => {
                    open_agents = false;
                    if let (Some(group), Ok(seconds)) = (groups.last_mut(), value.parse::<f64>())
                        && seconds.is_finite()
                        && seconds >= 0.0
                    {
                        group.2 = Some(((seconds * 1000.0) as u64).min(MAX_DELAY_MS));
                    }
                }
                "sitemap" => sitemaps.push(value.to_string()),
                _ => {}
            }
        }
        // The product token, case-insensitively (`Workhorse`, `workhorse/1.0`), not a prefix.
        let ours = |agent: &String| agent.split('/').next() == Some(USER_AGENT);
        let chosen = (groups.iter().filter(|g| g.0.iter().any(ours)).cloned())
            .reduce(merge)
            .or_else(|| {
                (groups
                    .iter()
                    .filter(|g| g.0.iter().any(|a| a == "*"))
                    .cloned())
                .reduce(merge)
            });
        let (rules, delay_ms) = chosen.map(|g| (g.1, g.2)).unwrap_or_default();
        Robots {
            rules,
            delay_ms,
            sitemaps,
        }
    }

    /// Whether a URL with this path (and query) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        let path = canonical(path);
        let path = path.as_str();
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let length = pattern.len();
                let better = match best {
                    None => true,
                    Some((l, a)) => length > l || (length == l && *allow && !a),
                };
                if better {
                    best = Some((length, *allow));
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

type Group = (Vec<String>, Vec<(bool, String)>, Option<u64>);

/// A path in the one form RFC 9309 §2.2.2 compares: characters outside ASCII percent-encoded
/// as UTF-8, percent-encoded unreserved characters (`%7E` for `~`) decoded, other escapes in
/// upper case; so `/café` in a rule matches the URL path `/caf%C3%A9`.
fn canonical(path: &str) -> String {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|hex| b == b'%' && hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) if unreserved(decoded) => {
                out.push(decoded as char);
                i += 3;
            }
            Some(decoded) => {
                out.push_str(&format!("%{decoded:02X}"));
                i += 3;
            }
            None if b.is_ascii() => {
                out.push(b as char);
                i += 1;
            }
            None => {
                out.push_str(&format!("%{b:02X}"));
                i += 1;
            }
        }
    }
    out
}

fn merge(mut a: Group, b: Group) -> Group {
    a.0.extend(b.0);
    a.1.extend(b.1);
    a.2 = a.2.or(b.2);
    a
}

/// RFC 9309 matching: a prefix match where `*` is any run of characters and a final `$`
/// anchors the end.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((first, rest)) = parts.split_first() else {
        return true;
    };
    let Some(mut remaining) = path.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        if last && anchored {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    // Reached without a `*` after the prefix: an anchored pattern must have used it all.
    !anchored || remaining.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
User-agent: *
Disallow: /private/
Allow: /private/open.html
Disallow: /*.pdf$
Crawl-delay: 0.5

User-agent: otherbot
Disallow: /

Sitemap: https://example.com/sitemap.xml
";

    #[test]
    fn the_star_group_applies_with_longest_match_and_patterns() {
        let robots = Robots::parse(FILE);
        assert!(robots.allows("/"));
        assert!(robots.allows("/docs/a.html"));
        assert!(!robots.allows("/private/secret.html"));
        assert!(robots.allows("/private/open.html"));
        assert!(!robots.allows("/files/report.pdf"));
        assert!(robots.allows("/files/report.pdf?download=1"));
        assert_eq!(robots.delay_ms, Some(500));
        assert_eq!(robots.sitemaps, ["https://example.com/sitemap.xml"]);
    }

    #[test]
    fn our_own_group_wins_over_the_star_group() {
        let robots =
            Robots::parse("User-agent: *\nDisallow: /\n\nUser-agent: Workhorse\nDisallow: /x\n");
        assert!(robots.allows("/docs"));
        assert!(!robots.allows("/x/y"));
    }

    #[test]
    fn a_byte_order_mark_and_other_agents_sharing_a_prefix_change_nothing() {
        let robots =
            Robots::parse("\u{feff}User-agent: w\nDisallow: /\n\nUser-agent: *\nDisallow: /x\n");
        assert!(robots.allows("/docs"), "`w` is not our token");
        assert!(!robots.allows("/x"));
    }

    #[test]
    fn paths_compare_in_one_percent_encoding() {
        let robots = Robots::parse("User-agent: *\nDisallow: /café\nDisallow: /%7euser/\n");
        assert!(!robots.allows("/caf%C3%A9/menu"));
        assert!(!robots.allows("/caf%c3%a9"));
        assert!(!robots.allows("/~user/page"));
        assert!(robots.allows("/cafe"));
        assert_eq!(canonical("/a%2fb%7E%zz%"), "/a%2Fb~%zz%");
    }

    #[test]
    fn an_empty_or_missing_file_allows_everything() {
        assert!(Robots::parse("").allows("/anything"));
        assert!(Robots::parse("User-agent: *\nDisallow:\n").allows("/anything"));
    }
}
