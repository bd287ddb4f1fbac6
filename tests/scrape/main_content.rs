//! The main-content extraction on five saved pages written for this test (a news article, a
//! technical blog post, a recipe, a documentation page, a product page), each with the chrome
//! real sites carry: consent dialogs, sticky headers, ads inside the article, newsletter boxes,
//! comments, related lists, long footers. `expectations.json` lists, per page, phrases of the
//! main content that must be kept and phrases of the chrome that must be dropped.

use std::path::PathBuf;

use serde_json::Value;
use url::Url;
use workhorse::scrape::content::{Selection, main_content};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages")
}

#[test]
fn main_content_keeps_the_article_and_drops_the_chrome_of_five_pages() {
    let expectations: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("expectations.json")).expect("expectations"),
    )
    .expect("valid JSON");
    let selection = Selection {
        only_main_content: true,
        ..Default::default()
    };
    let mut faults = Vec::new();
    for (page, expected) in expectations.as_object().expect("an object") {
        let html = std::fs::read_to_string(fixtures().join(page)).expect("the page");
        let url = Url::parse(&format!("https://example.test/{page}")).expect("a URL");
        let got = main_content(&html, &url, &selection);
        let phrases = |key: &str| -> Vec<String> {
            expected[key]
                .as_array()
                .expect("a list")
                .iter()
                .map(|p| p.as_str().expect("a phrase").to_string())
                .collect()
        };
        let (keep, drop) = (phrases("keep"), phrases("drop"));
        let kept = keep
            .iter()
            .filter(|p| got.text.contains(p.as_str()))
            .count();
        let dropped = drop
            .iter()
            .filter(|p| !got.text.contains(p.as_str()))
            .count();
        println!(
            "{page}: kept {kept}/{} main-content phrases, dropped {dropped}/{} chrome phrases, \
             {} of {} bytes of HTML kept as text",
            keep.len(),
            drop.len(),
            got.text.len(),
            html.len()
        );
        for p in keep.iter().filter(|p| !got.text.contains(p.as_str())) {
            faults.push(format!("{page}: lost {p:?}"));
        }
        for p in drop.iter().filter(|p| got.text.contains(p.as_str())) {
            faults.push(format!("{page}: kept {p:?}"));
        }
        for p in &keep {
            assert!(
                got.markdown.contains(p.as_str()) || !got.text.contains(p.as_str()),
                "{page}: {p:?} is in the text but not the Markdown"
            );
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}
