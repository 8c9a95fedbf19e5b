//! AWS Bedrock Runtime: Converse / ConverseStream (Bedrock's own format) and InvokeModel /
//! InvokeModelWithResponseStream, whose bodies are each model vendor's native format (Anthropic,
//! Amazon Titan and Nova, Meta Llama, Mistral, Cohere). The model id comes from the URL; usage from the
//! body, the `X-Amzn-Bedrock-*-Token-Count` headers or the stream's `amazon-bedrock-invocationMetrics`.

use base64::Engine;
use serde_json::Value;

use super::anthropic::{self, MessagesStream};
use super::{Api, Call, ContentPolicy, OutputAcc, StreamDecoder, Tokens, add, float, int, string};
use crate::content;
use crate::framing::{EventStreamMessage, Frame};
use crate::http::Headers;
use crate::span::Span;

/// The vendor of a Bedrock model id: the part before the first `.`, after an optional
/// cross-region prefix (`us.`, `eu.`, `apac.`, `global.` …). `None` for ARNs of profiles.
pub(super) fn vendor(model: &str) -> Option<&str> {
    let id = model.rsplit('/').next().unwrap_or(model);
    if model.starts_with("arn:") && !model.contains("foundation-model/") {
        return None;
    }
    let mut parts = id.split('.');
    let first = parts.next()?;
    const REGION_GROUPS: &[&str] = &["us", "eu", "apac", "jp", "au", "ca", "global", "us-gov"];
    if REGION_GROUPS.contains(&first) {
        parts.next()
    } else {
        Some(first)
    }
}

/// The operation of an InvokeModel call, from the model id and the body shape.
pub(super) fn invoke_operation(model: &str, body: Option<&Value>) -> &'static str {
    if model.contains("embed") {
        return "embeddings";
    }
    let has = |key: &str| body.is_some_and(|b| b.get(key).is_some());
    match vendor(model) {
        Some("anthropic") => "chat",
        _ if has("messages") || has("message") => "chat",
        _ if has("prompt") || has("inputText") => "text_completion",
        _ => "chat",
    }
}

pub(super) fn request(call: &Call, body: &Value, span: &mut Span, policy: ContentPolicy) {
    span.request_model = call.path_model.clone();
    span.streaming = Some(call.path_streaming);
    if call.api == Api::BedrockConverse {
        return converse_request(body, span, policy);
    }
    let model = call.path_model.as_deref().unwrap_or_default();
    if vendor(model) == Some("anthropic") || body.get("anthropic_version").is_some() {
        anthropic::request(body, span, policy);
        span.streaming = Some(call.path_streaming);
        return;
    }
    // The other vendors' request parameters, in their own names.
    span.temperature = float(body, "/temperature")
        .or_else(|| float(body, "/textGenerationConfig/temperature"))
        .or_else(|| float(body, "/inferenceConfig/temperature"));
    span.top_p = float(body, "/top_p")
        .or_else(|| float(body, "/p"))
        .or_else(|| float(body, "/textGenerationConfig/topP"))
        .or_else(|| float(body, "/inferenceConfig/topP"));
    span.max_tokens = int(body, "/max_tokens")
        .or_else(|| int(body, "/max_gen_len"))
        .or_else(|| int(body, "/textGenerationConfig/maxTokenCount"))
        .or_else(|| int(body, "/inferenceConfig/maxTokens"))
        .or_else(|| int(body, "/inferenceConfig/max_new_tokens"));
    if !policy.capture {
        return;
    }
    let prompt = ["prompt", "inputText", "message"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_str));
    if let Some(prompt) = prompt {
        span.input_messages =
            content::to_json_text(vec![content::message("user", vec![content::text(prompt)])]);
    } else if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        // Nova: Converse-like messages.
        span.input_messages =
            content::to_json_text(messages.iter().map(converse_message).collect());
        if let Some(system) = body.get("system").and_then(Value::as_array) {
            span.system_instructions =
                content::to_json_text(system.iter().filter_map(converse_part).collect());
        }
    } else if let Some(texts) = body.get("texts").and_then(Value::as_array) {
        let parts = texts
            .iter()
            .filter_map(Value::as_str)
            .map(content::text)
            .collect();
        span.input_messages = content::to_json_text(vec![content::message("user", parts)]);
    }
}

fn converse_request(body: &Value, span: &mut Span, policy: ContentPolicy) {
    span.temperature = float(body, "/inferenceConfig/temperature");
    span.top_p = float(body, "/inferenceConfig/topP");
    span.max_tokens = int(body, "/inferenceConfig/maxTokens");
    if !policy.capture {
        return;
    }
    let messages: Vec<Value> = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(converse_message)
        .collect();
    span.input_messages = content::to_json_text(messages);
    if let Some(system) = body.get("system").and_then(Value::as_array) {
        span.system_instructions =
            content::to_json_text(system.iter().filter_map(converse_part).collect());
    }
    if let Some(tools) = body.pointer("/toolConfig/tools") {
        span.tool_definitions = Some(tools.to_string());
    }
}

fn converse_message(message: &Value) -> Value {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let parts: Vec<Value> = message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(converse_part)
        .collect();
    let all_results = !parts.is_empty() && parts.iter().all(|p| p["type"] == "tool_call_response");
    content::message(if all_results { "tool" } else { role }, parts)
}

/// One Converse content block (a union keyed by member name).
fn converse_part(block: &Value) -> Option<Value> {
    if let Some(text) = block.get("text").and_then(Value::as_str) {
        return Some(content::text(text));
    }
    if let Some(tool) = block.get("toolUse") {
        return Some(content::tool_call(
            tool.get("toolUseId").and_then(Value::as_str),
            tool.get("name").and_then(Value::as_str).unwrap_or_default(),
            tool.get("input").cloned().unwrap_or(Value::Null),
        ));
    }
    if let Some(result) = block.get("toolResult") {
        let response = result
            .get("content")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        i.get("text")
                            .cloned()
                            .or_else(|| i.get("json").cloned())
                            .unwrap_or(Value::Null)
                    })
                    .collect::<Vec<_>>()
            })
            .map(|v| {
                if v.len() == 1 {
                    v[0].clone()
                } else {
                    Value::Array(v)
                }
            })
            .unwrap_or(Value::Null);
        return Some(content::tool_call_response(
            result.get("toolUseId").and_then(Value::as_str),
            response,
        ));
    }
    if let Some(reasoning) = block
        .pointer("/reasoningContent/reasoningText/text")
        .and_then(Value::as_str)
    {
        return Some(content::reasoning(reasoning));
    }
    if let Some(image) = block.get("image") {
        let format = image.get("format").and_then(Value::as_str);
        let len = image
            .pointer("/source/bytes")
            .and_then(Value::as_str)
            .map_or(0, str::len);
        return Some(content::blob("image", format, len));
    }
    if block.get("cachePoint").is_some() || block.get("guardContent").is_some() {
        return None;
    }
    block
        .as_object()
        .and_then(|o| o.keys().next())
        .map(|k| serde_json::json!({"type": k}))
}

/// Converse usage: for Anthropic models input excludes the cache, like Anthropic's own API.
fn converse_tokens(usage: &Value) -> Tokens {
    let cache_read =
        int(usage, "/cacheReadInputTokens").or_else(|| int(usage, "/cacheReadInputTokenCount"));
    let cache_creation =
        int(usage, "/cacheWriteInputTokens").or_else(|| int(usage, "/cacheWriteInputTokenCount"));
    Tokens {
        input: add(int(usage, "/inputTokens"), &[cache_read, cache_creation]),
        output: int(usage, "/outputTokens"),
        cache_read,
        cache_creation,
        reasoning: None,
    }
}

/// Usage from the `X-Amzn-Bedrock-*-Token-Count` response headers (InvokeModel).
pub(super) fn apply_token_headers(headers: &Headers, span: &mut Span) {
    let count = |name: &str| headers.get(name).and_then(|v| v.trim().parse::<i64>().ok());
    let cache_read = count("x-amzn-bedrock-cache-read-input-token-count");
    let cache_creation = count("x-amzn-bedrock-cache-write-input-token-count");
    Tokens {
        input: add(
            count("x-amzn-bedrock-input-token-count"),
            &[cache_read, cache_creation],
        ),
        output: count("x-amzn-bedrock-output-token-count"),
        cache_read,
        cache_creation,
        reasoning: None,
    }
    .write(span);
}

pub(super) fn response(call: &Call, json: &Value, span: &mut Span, policy: ContentPolicy) {
    // Bedrock responses do not name the model; the one asked for is the one that answered.
    span.response_model = call.path_model.clone();
    if call.api == Api::BedrockConverse
        || json
            .get("output")
            .is_some_and(|o| o.get("message").is_some())
    {
        if let Some(usage) = json.get("usage") {
            converse_tokens(usage).write(span);
        }
        let mut acc = OutputAcc::default();
        acc.choice(0).role = string(json, "/output/message/role");
        for (i, block) in json
            .pointer("/output/message/content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(text) = block.get("text").and_then(Value::as_str) {
                acc.push_text(0, i as u64, text);
            } else if let Some(tool) = block.get("toolUse") {
                acc.push_tool(
                    0,
                    i as u64,
                    tool.get("toolUseId").and_then(Value::as_str),
                    tool.get("name").and_then(Value::as_str),
                    "",
                );
                if let Some(super::PartAcc::Tool { value, .. }) =
                    acc.choice(0).parts.get_mut(&(i as u64))
                {
                    *value = tool.get("input").cloned();
                }
            } else if let Some(text) = block
                .pointer("/reasoningContent/reasoningText/text")
                .and_then(Value::as_str)
            {
                acc.push_reasoning(0, i as u64, text);
            }
        }
        if let Some(reason) = json.get("stopReason").and_then(Value::as_str) {
            acc.set_finish(0, reason);
        }
        if let Some(latency) = int(json, "/metrics/latencyMs") {
            span.attributes
                .insert("aws.bedrock.latency_ms".into(), latency.to_string());
        }
        acc.write(span, policy);
        return;
    }
    let model = call.path_model.as_deref().unwrap_or_default();
    if vendor(model) == Some("anthropic")
        || json.get("type").and_then(Value::as_str) == Some("message")
    {
        let header_tokens = (span.input_tokens, span.output_tokens);
        anthropic::response(json, span, policy);
        // Anthropic bodies on Bedrock name the model that answered; the path id is the fallback.
        if span.response_model.is_none() {
            span.response_model = call.path_model.clone();
        }
        if span.input_tokens.is_none() {
            span.input_tokens = header_tokens.0;
        }
        if span.output_tokens.is_none() {
            span.output_tokens = header_tokens.1;
        }
        return;
    }
    // Token counts in vendor bodies, used when the headers did not carry them.
    let body_tokens = Tokens {
        input: int(json, "/inputTextTokenCount")
            .or_else(|| int(json, "/prompt_token_count"))
            .or_else(|| int(json, "/usage/inputTokens")),
        output: int(json, "/results/0/tokenCount")
            .or_else(|| int(json, "/generation_token_count"))
            .or_else(|| int(json, "/usage/outputTokens")),
        ..Tokens::default()
    };
    if span.input_tokens.is_none() {
        span.input_tokens = body_tokens.input;
    }
    if span.output_tokens.is_none() && call.operation != "embeddings" {
        span.output_tokens = body_tokens.output;
    }
    span.response_id = string(json, "/response_id").or_else(|| string(json, "/id"));
    let mut acc = OutputAcc::default();
    let finish = [
        "/results/0/completionReason",
        "/stop_reason",
        "/outputs/0/stop_reason",
        "/finish_reason",
        "/generations/0/finish_reason",
    ]
    .iter()
    .find_map(|p| string(json, p));
    let text = [
        "/results/0/outputText",
        "/generation",
        "/outputs/0/text",
        "/text",
        "/generations/0/text",
    ]
    .iter()
    .find_map(|p| string(json, p));
    if let Some(text) = text {
        acc.push_text(0, 0, &text);
    }
    if let Some(finish) = finish {
        acc.set_finish(0, &finish);
    }
    acc.write(span, policy);
}

/// ConverseStream: eventstream messages named after the output union's members.
#[derive(Default)]
pub(super) struct ConverseStream {
    acc: OutputAcc,
    tokens: Option<Tokens>,
}

/// `throttlingException` → `ThrottlingException`, the name non-streamed errors use.
fn exception_name(kind: &str) -> String {
    let mut chars = kind.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn stream_exception(message: &EventStreamMessage, span: &mut Span) {
    let payload: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
    let text = string(&payload, "/message")
        .or_else(|| string(&payload, "/Message"))
        .or_else(|| message.error_message.clone());
    super::stream_error(span, Some(exception_name(&message.kind)), text);
}

impl StreamDecoder for ConverseStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let Frame::EventStream(message) = frame else {
            return false;
        };
        if message.message_type != "event" {
            stream_exception(message, span);
            return false;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&message.payload) else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        let index = int(&event, "/contentBlockIndex").unwrap_or(0) as u64;
        match message.kind.as_str() {
            "messageStart" => {
                self.acc.choice(0).role = string(&event, "/role");
                false
            }
            "contentBlockStart" => {
                if let Some(tool) = event.pointer("/start/toolUse") {
                    self.acc.push_tool(
                        0,
                        index,
                        tool.get("toolUseId").and_then(Value::as_str),
                        tool.get("name").and_then(Value::as_str),
                        "",
                    );
                }
                false
            }
            "contentBlockDelta" => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    self.acc.push_text(0, index, text);
                    !text.is_empty()
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    self.acc.push_tool(0, index, None, None, input);
                    !input.is_empty()
                } else if let Some(text) = delta
                    .pointer("/reasoningContent/text")
                    .and_then(Value::as_str)
                {
                    self.acc.push_reasoning(0, index, text);
                    !text.is_empty()
                } else {
                    false
                }
            }
            "messageStop" => {
                if let Some(reason) = event.get("stopReason").and_then(Value::as_str) {
                    self.acc.set_finish(0, reason);
                }
                false
            }
            "metadata" => {
                if let Some(usage) = event.get("usage") {
                    self.tokens = Some(converse_tokens(usage));
                }
                false
            }
            _ => false,
        }
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        if span.response_model.is_none() {
            span.response_model = span.request_model.clone();
        }
        if let Some(tokens) = self.tokens {
            tokens.write(span);
        }
        self.acc.write(span, policy);
    }

    fn done(&self) -> bool {
        self.tokens.is_some()
    }
}

/// InvokeModelWithResponseStream: `chunk` events whose `bytes` are base64 vendor-native chunks.
#[derive(Default)]
pub(super) struct InvokeStream {
    anthropic: MessagesStream,
    acc: OutputAcc,
    metrics: Option<Value>,
    saw_anthropic: bool,
}

impl StreamDecoder for InvokeStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let Frame::EventStream(message) = frame else {
            return false;
        };
        if message.message_type != "event" {
            stream_exception(message, span);
            return false;
        }
        let chunk = serde_json::from_slice::<Value>(&message.payload)
            .ok()
            .and_then(|p| p.get("bytes").and_then(Value::as_str).map(String::from))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        let Some(chunk) = chunk else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        if let Some(metrics) = chunk.get("amazon-bedrock-invocationMetrics") {
            self.metrics = Some(metrics.clone());
        }
        if chunk.get("type").is_some() {
            self.saw_anthropic = true;
            return self.anthropic.on_event(&chunk, span);
        }
        // Other vendors: a text field per chunk and a stop reason on the last.
        let text = [
            "/outputText",
            "/generation",
            "/outputs/0/text",
            "/text",
            "/completion",
        ]
        .iter()
        .find_map(|p| chunk.pointer(p).and_then(Value::as_str));
        if let Some(text) = text {
            self.acc.push_text(0, 0, text);
        }
        let finish = [
            "/completionReason",
            "/stop_reason",
            "/outputs/0/stop_reason",
            "/finish_reason",
        ]
        .iter()
        .find_map(|p| string(&chunk, p));
        if let Some(finish) = finish {
            self.acc.set_finish(0, &finish);
        }
        text.is_some_and(|t| !t.is_empty())
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        if self.saw_anthropic {
            self.anthropic.write(span, policy);
        } else {
            self.acc.write(span, policy);
        }
        if span.response_model.is_none() {
            span.response_model = span.request_model.clone();
        }
        if let Some(metrics) = &self.metrics {
            let cache_read = int(metrics, "/cacheReadInputTokenCount");
            let cache_creation = int(metrics, "/cacheWriteInputTokenCount");
            Tokens {
                input: add(
                    int(metrics, "/inputTokenCount"),
                    &[cache_read, cache_creation],
                ),
                output: int(metrics, "/outputTokenCount"),
                cache_read,
                cache_creation,
                reasoning: None,
            }
            .write(span);
            if let Some(first_byte) = int(metrics, "/firstByteLatency") {
                span.attributes.insert(
                    "aws.bedrock.first_byte_latency_ms".into(),
                    first_byte.to_string(),
                );
            }
        }
    }

    fn done(&self) -> bool {
        self.metrics.is_some() || self.anthropic.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_of_model_ids() {
        assert_eq!(
            vendor("anthropic.claude-3-haiku-20240307-v1:0"),
            Some("anthropic")
        );
        assert_eq!(
            vendor("us.anthropic.claude-sonnet-4-20250514-v1:0"),
            Some("anthropic")
        );
        assert_eq!(vendor("meta.llama3-70b-instruct-v1:0"), Some("meta"));
        assert_eq!(
            vendor("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"),
            Some("amazon")
        );
        assert_eq!(
            vendor("arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123"),
            None
        );
        assert_eq!(exception_name("throttlingException"), "ThrottlingException");
    }
}
