//! The OpenAPI document as served: poem-openapi's spec, shaped so that what it says is what the
//! server does and client generators read it whole.
//!
//! - [`refs`]: a field's `allOf` wrapper around one `$ref` becomes the `$ref` (generators drop
//!   or copy the wrapped type otherwise).
//! - [`statuses`]: each operation lists only the error statuses it can answer (poem-openapi
//!   gives every operation all of [`ApiError`](super::error::ApiError)'s), plus 415 where it
//!   takes a body.
//! - [`strict`]: request body objects say `additionalProperties: false`, as the server refuses
//!   unknown fields (422 naming them).
//! - [`unions`]: a discriminated union's `oneOf` and mapping name its variants, not the
//!   wrappers poem-openapi makes for them.
//! - [`variants`]: a job's `args` and a channel's target take one closed shape per `kind`
//!   ([`job_args`] holds each kind's arguments).
//! - [`examples`]: a request example for every body, one Swagger UI can send as it is.
//! - [`answers`]: a response example for every JSON answer, made from its schema.
//! - [`streams`]: a `text/event-stream` answer is described frame by frame.
//! - [`varnames`]: enum values that are not identifiers (time zones) get names generators keep.
//! - [`wire`]: JSON bodies keyed `application/json`; `x-request-id` on every answer.
//! - [`deployment`]: fields whose values are configured (plans, summary providers) list this
//!   daemon's names.
//!
//! Both the served `/openapi.json` and `workhorse openapi` go through [`document`]; the route
//! table and the body checks read the result, so they follow the same document.

pub mod answers;
pub mod deployment;
pub mod examples;
pub mod job_args;
pub mod refs;
pub mod statuses;
pub mod streams;
pub mod strict;
pub mod unions;
pub mod variants;
pub mod varnames;
pub mod wire;

use serde_json::Value;

pub use deployment::Deployment;

/// The served document for poem-openapi's `raw` spec on a daemon configured as `deployment`:
/// `raw` itself if it is not JSON.
pub fn document(raw: &str, deployment: &Deployment) -> String {
    let Ok(mut spec) = serde_json::from_str::<Value>(raw) else {
        return raw.to_string();
    };
    refs::unwrap_ref_wrappers(&mut spec);
    unions::name_variants_directly(&mut spec);
    statuses::narrow(&mut spec);
    strict::close_request_objects(&mut spec);
    variants::split_by_kind(&mut spec);
    streams::describe_frames(&mut spec);
    examples::add_request_examples(&mut spec);
    wire::plain_json_and_request_ids(&mut spec);
    varnames::name_enum_values(&mut spec);
    deployment::apply(&mut spec, deployment);
    answers::add_response_examples(&mut spec);
    serde_json::to_string_pretty(&spec).unwrap_or_else(|_| raw.to_string())
}

/// Every operation object of `spec` (a path's `get`, `post`, …), to change in place.
fn operations_mut(spec: &mut Value) -> impl Iterator<Item = &mut Value> {
    (spec
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter())
    .flat_map(|paths| paths.values_mut())
    .filter_map(Value::as_object_mut)
    .flat_map(|operations| operations.values_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_that_is_not_json_is_served_as_it_is() {
        assert_eq!(document("not json", &Deployment::default()), "not json");
    }
}
