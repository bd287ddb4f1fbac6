//! Spans of a page load: where they nest and what they say.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::Instrument;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::helpers::{Site, config, request, start};

/// A span as created: its name, its parent's name, and its `url` field.
#[derive(Debug, Clone)]
struct Recorded {
    name: String,
    parent: Option<String>,
    url: Option<String>,
}

/// Every span created while it is the default subscriber.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Recorded>>>);

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        struct UrlField(Option<String>);
        impl Visit for UrlField {
            fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
                if field.name() == "url" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut url = UrlField(None);
        attrs.record(&mut url);
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name().to_string());
        let name = attrs.metadata().name().to_string();
        self.0.lock().expect("the span log").push(Recorded {
            name,
            parent,
            url: url.0,
        });
    }
}

#[tokio::test]
async fn load_runs_in_webdriver_session_and_navigate_spans_inside_the_callers_span() {
    let spans = Spans::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    // With a single registered dispatcher, tracing asks the registering thread's default for a
    // callsite's interest, and other tests' threads (no subscriber) would cache "never" for the
    // library's spans; a second live dispatcher makes it ask every registered one.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let site = Site::start().await;
    let browser = start(config()).await;
    // A query may carry a secret: spans show the page without it.
    let url = site.url("/?token=secret");
    let shown = site.url("/").to_string();

    browser
        .load(&request(url.clone()))
        .instrument(tracing::info_span!("job"))
        .await
        .expect("a page");

    let spans = spans.0.lock().expect("the span log").clone();
    let find = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span in {spans:?}"))
            .clone()
    };
    let session = find("webdriver session");
    assert_eq!(session.parent.as_deref(), Some("job"));
    assert_eq!(session.url, Some(shown.clone()));
    let navigate = find("navigate");
    assert_eq!(navigate.parent.as_deref(), Some("webdriver session"));
    assert_eq!(navigate.url, Some(shown));
    browser.shutdown().await;
}
