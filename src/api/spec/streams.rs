//! Event streams described frame by frame. poem-openapi describes a `text/event-stream` answer
//! as an array of its events; in OpenAPI 3.0 a stream's `schema` describes one frame as the
//! wire carries it (3.2's `itemSchema`), which is how fuzzers and SSE clients read it. Each
//! stream answer's schema becomes [`SseFrame`](FRAME): `event` names the frame, `data` is its
//! JSON text (a `StreamEvent` for a state change, or the small `hello`, `reset`, `close`
//! objects docs/events.md describes), `id` is the number to resume after.

use serde_json::{Value, json};

/// The component every stream answer refers to.
pub const FRAME: &str = "SseFrame";

/// Replaces each `text/event-stream` answer's schema by the frame schema.
pub fn describe_frames(spec: &mut Value) {
    let mut any = false;
    for operation in super::operations_mut(spec) {
        let responses = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut);
        for response in responses.into_iter().flat_map(|r| r.values_mut()) {
            if let Some(media) = response.pointer_mut("/content/text~1event-stream") {
                media["schema"] = json!({"$ref": format!("#/components/schemas/{FRAME}")});
                any = true;
            }
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        && any
    {
        schemas.insert(FRAME.into(), frame());
    }
}

fn frame() -> Value {
    json!({
        "type": "object",
        "title": FRAME,
        "description": "One Server-Sent Events frame. `data` is JSON: a `StreamEvent` for a \
            change (`job.succeeded`, `scrapes.finished`, ...), `{\"type\": \"hello\", \"head\"}` \
            first, `{\"type\": \"reset\"}` when the events after `Last-Event-ID` are no longer \
            kept, `{\"type\": \"close\", \"reason\"}` last; a summary stream's frames carry its \
            text as it is written (docs/events.md).",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "description": "The frame's name, e.g. `hello`, \
                `job.succeeded`, `close`."},
            "data": {"type": "string", "description": "The frame's JSON text."},
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event \
                number: send the last one seen as `Last-Event-ID` to resume."},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_answer_is_described_by_its_frame() {
        let mut spec = json!({
            "paths": {"/v1/events": {"get": {"responses": {"200": {"content": {
                "text/event-stream": {"schema": {"type": "array", "items": {}}},
            }}}}}},
            "components": {"schemas": {}},
        });

        describe_frames(&mut spec);

        assert_eq!(
            spec["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
                ["schema"]["$ref"],
            "#/components/schemas/SseFrame"
        );
        assert_eq!(
            spec["components"]["schemas"][FRAME]["required"],
            json!(["data"])
        );
    }
}
