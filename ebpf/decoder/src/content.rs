//! Builders for message content in the OpenTelemetry GenAI format (`gen_ai.input.messages`,
//! `gen_ai.output.messages`, `gen_ai.system_instructions`): messages of typed parts. Inline binary
//! data (images, audio) is replaced by its size: a span keeps what was said, not megabytes of pixels.

use serde_json::{Map, Value, json};

pub fn text(content: &str) -> Value {
    json!({"type": "text", "content": content})
}

pub fn reasoning(content: &str) -> Value {
    json!({"type": "reasoning", "content": content})
}

/// A tool call; `arguments` given as JSON text is parsed when it is valid JSON (kept as text otherwise).
pub fn tool_call(id: Option<&str>, name: &str, arguments: Value) -> Value {
    let arguments = match arguments {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        other => other,
    };
    let mut part = Map::new();
    part.insert("type".into(), "tool_call".into());
    if let Some(id) = id {
        part.insert("id".into(), id.into());
    }
    part.insert("name".into(), name.into());
    part.insert("arguments".into(), arguments);
    Value::Object(part)
}

pub fn tool_call_response(id: Option<&str>, response: Value) -> Value {
    let mut part = Map::new();
    part.insert("type".into(), "tool_call_response".into());
    if let Some(id) = id {
        part.insert("id".into(), id.into());
    }
    part.insert("response".into(), response);
    Value::Object(part)
}

/// Inline binary content, recorded by modality, media type and size only.
pub fn blob(modality: &str, mime_type: Option<&str>, encoded_len: usize) -> Value {
    let mut part = Map::new();
    part.insert("type".into(), "blob".into());
    part.insert("modality".into(), modality.into());
    if let Some(mime) = mime_type {
        part.insert("mime_type".into(), mime.into());
    }
    part.insert("content".into(), Value::String(String::new()));
    part.insert("omitted_bytes".into(), encoded_len.into());
    Value::Object(part)
}

pub fn uri(modality: &str, uri: &str) -> Value {
    if let Some(data) = uri.strip_prefix("data:") {
        let mime = data.split([';', ',']).next();
        return blob(modality, mime, uri.len());
    }
    json!({"type": "uri", "modality": modality, "uri": uri})
}

pub fn message(role: &str, parts: Vec<Value>) -> Value {
    json!({"role": role, "parts": parts})
}

pub fn output_message(role: &str, parts: Vec<Value>, finish_reason: Option<&str>) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), role.into());
    message.insert("parts".into(), Value::Array(parts));
    if let Some(reason) = finish_reason {
        message.insert("finish_reason".into(), reason.into());
    }
    Value::Object(message)
}

/// Maps a provider's finish reason onto the OTel output-message enum
/// (`stop | length | content_filter | tool_call | error`); unknown values pass through.
pub fn otel_finish_reason(raw: &str) -> String {
    match raw {
        "stop" | "end_turn" | "stop_sequence" | "STOP" | "COMPLETE" | "FINISH" | "eos_token"
        | "FINISHED" => "stop",
        "length" | "max_tokens" | "MAX_TOKENS" | "model_context_window_exceeded" | "LENGTH" => {
            "length"
        }
        "tool_calls" | "tool_use" | "function_call" => "tool_call",
        "content_filter"
        | "content_filtered"
        | "guardrail_intervened"
        | "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "refusal"
        | "CONTENT_FILTERED" => "content_filter",
        "error" | "MALFORMED_FUNCTION_CALL" => "error",
        other => return other.to_string(),
    }
    .to_string()
}

/// Serialises a list of messages or parts; `None` when empty.
pub fn to_json_text(values: Vec<Value>) -> Option<String> {
    (!values.is_empty()).then(|| Value::Array(values).to_string())
}

/// Parts of a content value that is a string or an array of typed blocks (OpenAI, Anthropic, Ollama).
pub fn parts_of(content: &Value) -> Vec<Value> {
    match content {
        Value::Null => Vec::new(),
        Value::String(s) => vec![text(s)],
        Value::Array(items) => items.iter().filter_map(block_part).collect(),
        other => vec![text(&other.to_string())],
    }
}

/// One typed content block of OpenAI chat / Responses or Anthropic Messages.
fn block_part(block: &Value) -> Option<Value> {
    if let Value::String(s) = block {
        return Some(text(s));
    }
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    let str_of = |key: &str| block.get(key).and_then(Value::as_str);
    Some(match kind {
        "text" | "input_text" | "output_text" => text(str_of("text").unwrap_or_default()),
        "refusal" => text(str_of("refusal").unwrap_or_default()),
        "thinking" => reasoning(str_of("thinking").unwrap_or_default()),
        "redacted_thinking" => reasoning("[redacted]"),
        "image_url" => uri(
            "image",
            block
                .pointer("/image_url/url")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        "input_image" => match str_of("image_url") {
            Some(url) => uri("image", url),
            None => json!({"type": "file", "modality": "image", "file_id": str_of("file_id")}),
        },
        "input_audio" => blob(
            "audio",
            block.pointer("/input_audio/format").and_then(Value::as_str),
            block
                .pointer("/input_audio/data")
                .and_then(Value::as_str)
                .map_or(0, str::len),
        ),
        "image" | "document" => {
            let source = block.get("source");
            let source_kind = source.and_then(|s| s.get("type")).and_then(Value::as_str);
            let modality = if kind == "image" { "image" } else { "document" };
            match source_kind {
                Some("url") => uri(
                    modality,
                    source
                        .and_then(|s| s.get("url"))
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
                Some("text") => text(
                    source
                        .and_then(|s| s.get("data"))
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
                _ => blob(
                    modality,
                    source
                        .and_then(|s| s.get("media_type"))
                        .and_then(Value::as_str),
                    source
                        .and_then(|s| s.get("data"))
                        .and_then(Value::as_str)
                        .map_or(0, str::len),
                ),
            }
        }
        "tool_use" | "server_tool_use" => tool_call(
            str_of("id"),
            str_of("name").unwrap_or_default(),
            block.get("input").cloned().unwrap_or(Value::Null),
        ),
        "tool_result" => tool_call_response(
            str_of("tool_use_id"),
            match block.get("content") {
                Some(Value::Array(items)) => Value::String(
                    items
                        .iter()
                        .filter_map(|i| i.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(""),
                ),
                Some(other) => other.clone(),
                None => Value::Null,
            },
        ),
        "input_file" | "file" => json!({"type": "file", "file_id": str_of("file_id")}),
        _ => {
            // Unknown block kinds keep their type so nothing silently disappears.
            json!({"type": kind})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_otel_parts() {
        let content = json!([
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
        ]);
        let parts = parts_of(&content);
        assert_eq!(
            parts[0],
            json!({"type": "text", "content": "What is in this image?"})
        );
        assert_eq!(parts[1]["type"], "blob");
        assert_eq!(parts[1]["mime_type"], "image/png");
        assert_eq!(parts[2]["arguments"], json!({"a": 1}));
        assert_eq!(
            tool_call(None, "f", Value::String("{\"city\":\"Paris\"}".into()))["arguments"],
            json!({"city": "Paris"})
        );
        assert_eq!(otel_finish_reason("end_turn"), "stop");
        assert_eq!(otel_finish_reason("tool_calls"), "tool_call");
    }
}
