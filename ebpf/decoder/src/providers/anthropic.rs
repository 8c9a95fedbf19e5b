//! Anthropic Messages: the request, the unary message, and the SSE event sequence (`message_start`,
//! content blocks with text / thinking / tool-input deltas, `ping`, cumulative `message_delta` usage,
//! in-stream `error`). Also used for Anthropic models on Bedrock and Vertex AI, whose bodies are the same.

use serde_json::Value;

use super::{ContentPolicy, OutputAcc, StreamDecoder, Tokens, add, error_of, float, int, string};
use crate::content;
use crate::framing::Frame;
use crate::span::Span;

pub(super) fn request(body: &Value, span: &mut Span, policy: ContentPolicy) {
    if span.request_model.is_none() {
        span.request_model = string(body, "/model");
    }
    span.temperature = float(body, "/temperature");
    span.top_p = float(body, "/top_p");
    span.max_tokens = int(body, "/max_tokens");
    span.streaming = Some(body.get("stream").and_then(Value::as_bool).unwrap_or(false));
    if !policy.capture {
        return;
    }
    let messages: Vec<Value> = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            let parts = content::parts_of(m.get("content").unwrap_or(&Value::Null));
            // Tool results travel in user turns; OTel calls their sender `tool`.
            let all_results =
                !parts.is_empty() && parts.iter().all(|p| p["type"] == "tool_call_response");
            content::message(if all_results { "tool" } else { role }, parts)
        })
        .collect();
    span.input_messages = content::to_json_text(messages);
    if let Some(system) = body.get("system") {
        span.system_instructions = content::to_json_text(content::parts_of(system));
    }
    if let Some(tools) = body
        .get("tools")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        span.tool_definitions = Some(tools.to_string());
    }
}

/// Normalised tokens of an Anthropic `usage` object: input includes cache reads and writes.
pub(super) fn usage_tokens(usage: &Value) -> Tokens {
    let cache_read = int(usage, "/cache_read_input_tokens");
    let cache_creation = int(usage, "/cache_creation_input_tokens");
    Tokens {
        input: add(int(usage, "/input_tokens"), &[cache_read, cache_creation]),
        output: int(usage, "/output_tokens"),
        cache_read,
        cache_creation,
        reasoning: int(usage, "/output_tokens_details/thinking_tokens"),
    }
}

pub(super) fn response(json: &Value, span: &mut Span, policy: ContentPolicy) {
    if json.get("type").and_then(Value::as_str) == Some("error") {
        let (kind, message) = error_of(json);
        span.error_type = kind;
        span.error_message = message;
        return;
    }
    span.response_model = string(json, "/model").or(span.response_model.take());
    span.response_id = string(json, "/id");
    if let Some(usage) = json.get("usage") {
        usage_tokens(usage).write(span);
    }
    let mut acc = OutputAcc::default();
    acc.choice(0).role = string(json, "/role");
    for (i, block) in json
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        apply_block(&mut acc, i as u64, block);
    }
    if let Some(reason) = json.get("stop_reason").and_then(Value::as_str) {
        acc.set_finish(0, reason);
    }
    acc.write(span, policy);
}

fn apply_block(acc: &mut OutputAcc, index: u64, block: &Value) {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => acc.push_text(
            0,
            index,
            block
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        Some("thinking") => acc.push_reasoning(
            0,
            index,
            block
                .get("thinking")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        Some("tool_use" | "server_tool_use") => {
            acc.push_tool(
                0,
                index,
                block.get("id").and_then(Value::as_str),
                block.get("name").and_then(Value::as_str),
                "",
            );
            if let Some(super::PartAcc::Tool { value, .. }) = acc.choice(0).parts.get_mut(&index) {
                // Unary responses carry the input as an object; streams start with `{}` and fill it by deltas.
                *value = block
                    .get("input")
                    .filter(|v| v.as_object().is_none_or(|o| !o.is_empty()))
                    .cloned();
            }
        }
        _ => {}
    }
}

/// The Messages SSE stream (also the decoded chunks of Bedrock's InvokeModelWithResponseStream).
#[derive(Default)]
pub(crate) struct MessagesStream {
    acc: OutputAcc,
    pub(crate) stopped: bool,
    start_usage: Option<Value>,
    delta_usage: Option<Value>,
}

impl MessagesStream {
    /// Applies one event JSON; returns true when it carried content.
    pub(crate) fn on_event(&mut self, event: &Value, span: &mut Span) -> bool {
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "message_start" => {
                let message = event.get("message").unwrap_or(&Value::Null);
                if let Some(model) = string(message, "/model") {
                    span.response_model = Some(model);
                }
                span.response_id = string(message, "/id");
                self.acc.choice(0).role = string(message, "/role");
                self.start_usage = message.get("usage").cloned();
                false
            }
            "content_block_start" => {
                let index = int(event, "/index").unwrap_or(0) as u64;
                let block = event.get("content_block").unwrap_or(&Value::Null);
                apply_block(&mut self.acc, index, block);
                false
            }
            "content_block_delta" => {
                let index = int(event, "/index").unwrap_or(0) as u64;
                let delta = event.get("delta").unwrap_or(&Value::Null);
                let text = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        self.acc.push_text(0, index, text("text"));
                        !text("text").is_empty()
                    }
                    Some("thinking_delta") => {
                        self.acc.push_reasoning(0, index, text("thinking"));
                        !text("thinking").is_empty()
                    }
                    Some("input_json_delta") => {
                        self.acc
                            .push_tool(0, index, None, None, text("partial_json"));
                        !text("partial_json").is_empty()
                    }
                    Some("citations_delta") => true,
                    _ => false, // signature_delta and unknown kinds carry no generated content
                }
            }
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.acc.set_finish(0, reason);
                }
                if let Some(usage) = event.get("usage") {
                    self.delta_usage = Some(usage.clone());
                }
                false
            }
            "message_stop" => {
                self.stopped = true;
                false
            }
            "error" => {
                let (kind, message) = error_of(event);
                super::stream_error(span, kind, message);
                false
            }
            _ => false, // ping, message_stop, content_block_stop
        }
    }

    pub(crate) fn write(&mut self, span: &mut Span, policy: ContentPolicy) {
        // message_delta usage is cumulative and may omit the input counts: overlay it on message_start's.
        let mut usage = self.start_usage.clone().unwrap_or(Value::Null);
        if let (Some(Value::Object(delta)), Value::Object(base)) = (&self.delta_usage, &mut usage) {
            for (key, value) in delta {
                if !value.is_null() {
                    base.insert(key.clone(), value.clone());
                }
            }
        } else if let Some(delta) = &self.delta_usage {
            usage = delta.clone();
        }
        if usage.is_object() {
            usage_tokens(&usage).write(span);
        }
        self.acc.write(span, policy);
    }
}

impl StreamDecoder for MessagesStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let data = match frame {
            Frame::Sse { data, .. } => data.as_bytes(),
            Frame::Json(bytes) => bytes,
            Frame::EventStream(_) => return false,
        };
        match serde_json::from_slice::<Value>(data) {
            Ok(event) => self.on_event(&event, span),
            Err(_) => {
                span.flag(crate::span::flags::UNDECODABLE);
                false
            }
        }
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        self.write(span, policy);
    }

    fn done(&self) -> bool {
        self.stopped
    }
}
