//! Structured extraction through a real llama.cpp server: the schema goes out as the call's
//! `response_format`, which llama.cpp turns into a grammar, so even the tiny 270M model answers
//! JSON of the schema's shape, and the answer passes the same check as any provider's.

use std::time::Duration;

use serde_json::json;
use workhorse::scrape::extract::{Extraction, extract, schema};
use workhorse::summarise::providers::Providers;

use crate::llama::{self, LlamaServer};

const PAGE: &str = "The town of Millbrook opened its new public library on Saturday. The head \
librarian, Maria Lopez, said the library will open on Sundays for the first time. It cost 4.2 \
million euros and has three floors.";

#[tokio::test]
async fn a_real_llama_cpp_server_answers_json_that_fits_the_schema() {
    let Some(model) = llama::model_or_skip().await else {
        return;
    };
    let server = LlamaServer::start(&model).await;
    let providers =
        Providers::new(vec![server.provider("llama")], Duration::from_secs(60)).expect("providers");
    let extraction = Extraction {
        schema: json!({
            "type": "object",
            "properties": {
                "head_librarian": {"type": "string"},
                "floors": {"type": "integer"},
            },
            "required": ["head_librarian", "floors"],
            "additionalProperties": false,
        }),
        prompt: Some("Who is the head librarian, and how many floors are there?".into()),
    };

    let value = extract(&providers, PAGE, &extraction)
        .await
        .unwrap_or_else(|e| panic!("{e}; the server's log:\n{}", server.log_tail()));

    eprintln!("llama.cpp extracted {value}");
    assert!(
        schema::validate(&extraction.schema, &value).is_empty(),
        "{value}"
    );
}
