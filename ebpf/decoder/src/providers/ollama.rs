//! Ollama's native API: `/api/chat` and `/api/generate` (NDJSON streams by default, one JSON object
//! when `stream: false`) and `/api/embed`. Durations on the wire are nanoseconds.

use serde_json::Value;

use super::{
    Api, Call, ContentPolicy, OutputAcc, StreamDecoder, Tokens, error_of, float, int, string,
};
use crate::content;
use crate::framing::Frame;
use crate::span::Span;

pub(super) fn request(call: &Call, body: &Value, span: &mut Span, policy: ContentPolicy) {
    span.request_model = string(body, "/model");
    span.temperature = float(body, "/options/temperature");
    span.top_p = float(body, "/options/top_p");
    span.max_tokens = int(body, "/options/num_predict");
    // Ollama streams unless told not to.
    span.streaming = Some(
        call.api != Api::OllamaEmbed && body.get("stream").and_then(Value::as_bool).unwrap_or(true),
    );
    if !policy.capture {
        return;
    }
    match call.api {
        Api::OllamaChat => {
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|m| {
                    let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
                    let mut parts = content::parts_of(m.get("content").unwrap_or(&Value::Null));
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        parts.push(content::tool_call(
                            None,
                            call.pointer("/function/name")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            call.pointer("/function/arguments")
                                .cloned()
                                .unwrap_or(Value::Null),
                        ));
                    }
                    content::message(role, parts)
                })
                .collect();
            span.input_messages = content::to_json_text(messages);
        }
        Api::OllamaGenerate => {
            if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
                span.input_messages = content::to_json_text(vec![content::message(
                    "user",
                    vec![content::text(prompt)],
                )]);
            }
            if let Some(system) = body.get("system").and_then(Value::as_str) {
                span.system_instructions = content::to_json_text(vec![content::text(system)]);
            }
        }
        _ => {
            let parts: Vec<Value> = match body.get("input").or_else(|| body.get("prompt")) {
                Some(Value::String(s)) => vec![content::text(s)],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(content::text)
                    .collect(),
                _ => Vec::new(),
            };
            if !parts.is_empty() {
                span.input_messages = content::to_json_text(vec![content::message("user", parts)]);
            }
        }
    }
    if let Some(tools) = body
        .get("tools")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        span.tool_definitions = Some(tools.to_string());
    }
}

/// Applies one object (a stream line or the whole unary body); true when it carried content.
fn apply(json: &Value, span: &mut Span, acc: &mut OutputAcc) -> bool {
    if let Some(model) = string(json, "/model") {
        span.response_model = Some(model);
    }
    let message = json.get("message");
    let text = message
        .and_then(|m| m.get("content"))
        .or_else(|| json.get("response"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let thinking = message
        .and_then(|m| m.get("thinking"))
        .or_else(|| json.get("thinking"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    acc.choice(0).role = Some("assistant".into());
    acc.push_reasoning(0, 0, thinking);
    acc.push_text(0, 1, text);
    let mut content_bearing = !text.is_empty() || !thinking.is_empty();
    for (i, call) in message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = 1000 + i as u64 + acc.choice(0).parts.len() as u64;
        acc.push_tool(
            0,
            key,
            None,
            call.pointer("/function/name").and_then(Value::as_str),
            "",
        );
        if let Some(super::PartAcc::Tool { value, .. }) = acc.choice(0).parts.get_mut(&key) {
            *value = call.pointer("/function/arguments").cloned();
        }
        content_bearing = true;
    }
    if json.get("done").and_then(Value::as_bool) == Some(true) {
        if let Some(reason) = json.get("done_reason").and_then(Value::as_str) {
            acc.set_finish(0, reason);
        }
        Tokens {
            input: int(json, "/prompt_eval_count"),
            output: int(json, "/eval_count"),
            ..Tokens::default()
        }
        .write(span);
        if let Some(load) = int(json, "/load_duration") {
            span.attributes.insert(
                "ollama.load_duration_ms".into(),
                format!("{:.3}", load as f64 / 1e6),
            );
        }
    }
    content_bearing
}

pub(super) fn response(call: &Call, json: &Value, span: &mut Span, policy: ContentPolicy) {
    if call.api == Api::OllamaEmbed {
        span.response_model = string(json, "/model");
        span.input_tokens = int(json, "/prompt_eval_count");
        return;
    }
    let mut acc = OutputAcc::default();
    apply(json, span, &mut acc);
    acc.write(span, policy);
}

#[derive(Default)]
pub(super) struct OllamaStream {
    acc: OutputAcc,
    done: bool,
}

impl StreamDecoder for OllamaStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let Frame::Json(line) = frame else {
            return false;
        };
        let Ok(json) = serde_json::from_slice::<Value>(line) else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        if json.get("error").is_some() {
            let (kind, message) = error_of(&json);
            super::stream_error(span, kind, message);
            return false;
        }
        self.done |= json.get("done").and_then(Value::as_bool) == Some(true);
        apply(&json, span, &mut self.acc)
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        self.acc.write(span, policy);
    }

    fn done(&self) -> bool {
        self.done
    }
}
