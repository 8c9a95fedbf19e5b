//! LLM APIs: which API an exchange speaks (from host, path and body shape), and how its request,
//! unary response, stream events and errors map onto a span. One module per API family; this module
//! owns the classification, the shared output accumulator and the error rules common to all.

mod anthropic;
mod bedrock;
mod gemini;
mod ollama;
mod openai;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::content;
use crate::framing::{Frame, Framing};
use crate::http::{Headers, RequestHead};
use crate::span::Span;

/// The API (wire format) of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAiChat,
    OpenAiResponses,
    OpenAiCompletions,
    OpenAiEmbeddings,
    AnthropicMessages,
    BedrockConverse,
    BedrockInvoke,
    Gemini,
    OllamaChat,
    OllamaGenerate,
    OllamaEmbed,
}

/// A classified LLM call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub api: Api,
    /// `gen_ai.provider.name`.
    pub provider: String,
    pub operation: &'static str,
    /// A model named by the URL (Azure deployment, Bedrock model id, Gemini model).
    pub path_model: Option<String>,
    /// The request asked for a stream through the URL (Bedrock `-stream`, Gemini `streamGenerateContent`).
    pub path_streaming: bool,
}

/// Provider names of well-known hosts (OTel `gen_ai.provider.name` values where one exists).
fn provider_of_host(host: &str) -> Option<&'static str> {
    const SUFFIXES: &[(&str, &str)] = &[
        ("api.openai.com", "openai"),
        (".openai.azure.com", "azure.ai.openai"),
        (".cognitiveservices.azure.com", "azure.ai.openai"),
        (".services.ai.azure.com", "azure.ai.openai"),
        ("api.anthropic.com", "anthropic"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("aiplatform.googleapis.com", "gcp.vertex_ai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("api.mistral.ai", "mistral_ai"),
        ("openrouter.ai", "openrouter"),
        ("api.perplexity.ai", "perplexity"),
        ("api.x.ai", "x_ai"),
        ("api.together.xyz", "together_ai"),
        ("api.fireworks.ai", "fireworks_ai"),
        ("api.moonshot.ai", "moonshot_ai"),
        ("api.cohere.com", "cohere"),
        ("ollama.com", "ollama"),
    ];
    if host.starts_with("bedrock-runtime") && (host.contains(".amazonaws.com")) {
        return Some("aws.bedrock");
    }
    SUFFIXES
        .iter()
        .find(|(suffix, _)| host == suffix.trim_start_matches('.') || host.ends_with(suffix))
        .map(|(_, provider)| *provider)
}

/// Classifies a request by path first (the API shape), then names the provider from the host.
/// `body` is the parsed request body when it was complete and JSON.
pub fn classify(head: &RequestHead, port: Option<u16>, body: Option<&Value>) -> Option<Call> {
    if head.method != "POST" {
        return None;
    }
    let path = head.path();
    let host = head.host();
    let host_provider = host.as_deref().and_then(provider_of_host);
    let port = head.authority_port().or(port);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last().copied().unwrap_or_default();
    let call = |api, provider: &str, operation, path_model: Option<String>, path_streaming| {
        Some(Call {
            api,
            provider: provider.to_string(),
            operation,
            path_model,
            path_streaming,
        })
    };
    let has = |key: &str| body.is_none_or(|b| b.get(key).is_some());

    // Bedrock Runtime: /model/{modelId}/{operation}.
    if segments.len() >= 3 && segments[segments.len() - 3] == "model" {
        let model = percent_encoding::percent_decode_str(segments[segments.len() - 2])
            .decode_utf8_lossy()
            .into_owned();
        let provider = host_provider.unwrap_or("aws.bedrock");
        return match last {
            "converse" => call(Api::BedrockConverse, provider, "chat", Some(model), false),
            "converse-stream" => call(Api::BedrockConverse, provider, "chat", Some(model), true),
            "invoke" | "invoke-with-response-stream" => {
                let operation = bedrock::invoke_operation(&model, body);
                call(
                    Api::BedrockInvoke,
                    provider,
                    operation,
                    Some(model),
                    last == "invoke-with-response-stream",
                )
            }
            _ => None,
        };
    }
    // Gemini and Vertex AI: .../models/{model}:{method}.
    if let Some((prefix, method)) = last.split_once(':') {
        let provider = host_provider.unwrap_or(if path.contains("/projects/") {
            "gcp.vertex_ai"
        } else {
            "gcp.gemini"
        });
        let model = (!prefix.is_empty()).then(|| prefix.to_string());
        return match method {
            "generateContent" => call(Api::Gemini, provider, "generate_content", model, false),
            "streamGenerateContent" => call(Api::Gemini, provider, "generate_content", model, true),
            // Anthropic models on Vertex speak the Messages format.
            "rawPredict" if path.contains("/publishers/anthropic/") => {
                call(Api::AnthropicMessages, provider, "chat", model, false)
            }
            "streamRawPredict" if path.contains("/publishers/anthropic/") => {
                call(Api::AnthropicMessages, provider, "chat", model, true)
            }
            _ => None,
        };
    }
    // Ollama's native API.
    if segments.first() == Some(&"api") && segments.len() == 2 {
        let provider = host_provider.unwrap_or("ollama");
        return match last {
            "chat" if has("messages") => call(Api::OllamaChat, provider, "chat", None, false),
            "generate" if has("prompt") || has("model") => call(
                Api::OllamaGenerate,
                provider,
                "text_completion",
                None,
                false,
            ),
            "embed" | "embeddings" => call(Api::OllamaEmbed, provider, "embeddings", None, false),
            _ => None,
        };
    }
    // Everything else is an OpenAI-shaped API (OpenAI, Azure, compatible servers, Anthropic Messages).
    let azure_deployment = segments
        .windows(2)
        .find(|w| w[0] == "deployments")
        .map(|w| w[1].to_string());
    let default_provider = || {
        host_provider.unwrap_or(if port == Some(11434) {
            "ollama"
        } else if azure_deployment.is_some() {
            "azure.ai.openai"
        } else {
            "openai_compatible"
        })
    };
    match last {
        "completions" if segments.len() >= 2 && segments[segments.len() - 2] == "chat" => {
            has("messages").then_some(())?;
            call(
                Api::OpenAiChat,
                default_provider(),
                "chat",
                azure_deployment,
                false,
            )
        }
        "completions" => {
            has("prompt").then_some(())?;
            call(
                Api::OpenAiCompletions,
                default_provider(),
                "text_completion",
                azure_deployment,
                false,
            )
        }
        "responses" => {
            has("input").then_some(())?;
            call(
                Api::OpenAiResponses,
                default_provider(),
                "chat",
                azure_deployment,
                false,
            )
        }
        "embeddings" => {
            has("input").then_some(())?;
            call(
                Api::OpenAiEmbeddings,
                default_provider(),
                "embeddings",
                azure_deployment,
                false,
            )
        }
        "messages" => {
            has("messages").then_some(())?;
            let provider = host_provider.unwrap_or("anthropic");
            call(Api::AnthropicMessages, provider, "chat", None, false)
        }
        _ => None,
    }
}

/// Classifies a response body whose request was not seen (an HTTP/2 stream attached mid-connection)
/// by the shape of its first bytes.
pub fn sniff_response(body: &[u8]) -> Option<(Call, Option<Framing>)> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let framing =
        if text.starts_with("data:") || text.starts_with("event:") || text.starts_with(':') {
            Some(Framing::Sse)
        } else if body.len() >= 12 && body[0] == 0 && !text.trim_start().starts_with('{') {
            Some(Framing::EventStream)
        } else {
            None
        };
    let call = |api, provider: &str, operation| Call {
        api,
        provider: provider.to_string(),
        operation,
        path_model: None,
        path_streaming: framing.is_some(),
    };
    let found = if framing == Some(Framing::EventStream) {
        call(Api::BedrockConverse, "aws.bedrock", "chat")
    } else if text.contains("chat.completion") {
        call(Api::OpenAiChat, "openai_compatible", "chat")
    } else if text.contains("\"response.") || text.contains("\"object\":\"response\"") {
        call(Api::OpenAiResponses, "openai_compatible", "chat")
    } else if text.contains("message_start") || text.contains("\"type\":\"message\"") {
        call(Api::AnthropicMessages, "anthropic", "chat")
    } else if text.contains("\"candidates\"") || text.contains("usageMetadata") {
        call(Api::Gemini, "gcp.gemini", "generate_content")
    } else if text.contains("\"text_completion\"") {
        call(
            Api::OpenAiCompletions,
            "openai_compatible",
            "text_completion",
        )
    } else if text.contains("\"done\":") && text.contains("\"model\"") {
        let framing = Some(Framing::Ndjson);
        return Some((call(Api::OllamaChat, "ollama", "chat"), framing));
    } else {
        return None;
    };
    Some((found, framing))
}

/// Options that shape what a span may carry.
#[derive(Debug, Clone, Copy)]
pub struct ContentPolicy {
    /// Prompts, completions, system instructions and tool definitions are recorded.
    pub capture: bool,
}

/// Fills request fields (model, parameters, content) from a parsed request body.
pub fn apply_request(call: &Call, body: &Value, span: &mut Span, policy: ContentPolicy) {
    match call.api {
        Api::OpenAiChat | Api::OpenAiCompletions | Api::OpenAiEmbeddings | Api::OpenAiResponses => {
            openai::request(call, body, span, policy)
        }
        Api::AnthropicMessages => anthropic::request(body, span, policy),
        Api::BedrockConverse | Api::BedrockInvoke => bedrock::request(call, body, span, policy),
        Api::Gemini => gemini::request(call, body, span, policy),
        Api::OllamaChat | Api::OllamaGenerate | Api::OllamaEmbed => {
            ollama::request(call, body, span, policy)
        }
    }
}

/// The framing of a streamed response, from its content type and the API.
pub fn stream_framing(
    call: &Call,
    content_type: Option<&str>,
    query_alt_sse: bool,
) -> Option<Framing> {
    match content_type {
        Some("text/event-stream") => Some(Framing::Sse),
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
            Some(Framing::Ndjson)
        }
        Some("application/vnd.amazon.eventstream") => Some(Framing::EventStream),
        _ if call.api == Api::BedrockConverse && call.path_streaming => Some(Framing::EventStream),
        _ if call.api == Api::BedrockInvoke && call.path_streaming => Some(Framing::EventStream),
        _ if call.api == Api::Gemini && call.path_streaming => Some(if query_alt_sse {
            Framing::Sse
        } else {
            Framing::JsonArray
        }),
        _ => None,
    }
}

/// Decodes a unary (non-streamed) response body: success fields or the error.
pub fn apply_response(
    call: &Call,
    status: u16,
    headers: &Headers,
    body: &[u8],
    span: &mut Span,
    policy: ContentPolicy,
) {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if status >= 400 {
        apply_error(call, status, headers, json.as_ref(), span);
        return;
    }
    if call.api == Api::BedrockInvoke || call.api == Api::BedrockConverse {
        bedrock::apply_token_headers(headers, span);
    }
    let Some(json) = json else {
        if !body.is_empty() {
            span.flag(crate::span::flags::UNDECODABLE);
        }
        return;
    };
    match call.api {
        Api::OpenAiChat | Api::OpenAiCompletions | Api::OpenAiEmbeddings | Api::OpenAiResponses => {
            openai::response(call, &json, span, policy)
        }
        Api::AnthropicMessages => anthropic::response(&json, span, policy),
        Api::BedrockConverse | Api::BedrockInvoke => bedrock::response(call, &json, span, policy),
        Api::Gemini => gemini::response(&json, span, policy),
        Api::OllamaChat | Api::OllamaGenerate | Api::OllamaEmbed => {
            ollama::response(call, &json, span, policy)
        }
    }
}

/// Error type and message of a failed response (HTTP status >= 400).
fn apply_error(call: &Call, status: u16, headers: &Headers, json: Option<&Value>, span: &mut Span) {
    if matches!(call.api, Api::BedrockConverse | Api::BedrockInvoke)
        && let Some(kind) = headers.get("x-amzn-errortype")
    {
        let kind = kind.split(':').next().unwrap_or(kind).trim();
        span.error_type = Some(kind.to_string());
    }
    if let Some(json) = json {
        let (kind, message) = error_of(json);
        if span.error_type.is_none() {
            span.error_type = kind;
        }
        span.error_message = message;
    }
    if span.error_type.is_none() {
        span.error_type = Some(status.to_string());
    }
}

/// `(type, message)` of a JSON error document in any provider's shape.
pub(crate) fn error_of(json: &Value) -> (Option<String>, Option<String>) {
    let str_at = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(String::from);
    match json.get("error") {
        // OpenAI: code, else type; Anthropic: type; Gemini: status.
        Some(error @ Value::Object(_)) => {
            let kind = error
                .get("code")
                .and_then(|c| match c {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .or_else(|| str_at(error, "status"))
                .or_else(|| str_at(error, "type"))
                .or_else(|| error.get("code").map(Value::to_string));
            (kind, str_at(error, "message"))
        }
        // Ollama: {"error": "text"}.
        Some(Value::String(message)) => (None, Some(message.clone())),
        _ => (
            str_at(json, "__type").map(|t| t.rsplit('#').next().unwrap_or(&t).to_string()),
            str_at(json, "message").or_else(|| str_at(json, "Message")),
        ),
    }
}

/// A decoder for one response stream.
pub trait StreamDecoder: Send {
    /// Applies one event; returns true when it carried generated content (the TTFT signal).
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool;
    /// Writes what was accumulated (output messages, finish reasons, usage) into the span.
    fn finish(&mut self, span: &mut Span, policy: ContentPolicy);
    /// The stream's own end marker was seen (`[DONE]`, `message_stop`, `response.completed`, …): a
    /// connection closed right after it lost nothing.
    fn done(&self) -> bool;
}

pub fn stream_decoder(call: &Call) -> Box<dyn StreamDecoder> {
    match call.api {
        Api::OpenAiChat | Api::OpenAiCompletions | Api::OpenAiEmbeddings => {
            Box::new(openai::ChatStream::default())
        }
        Api::OpenAiResponses => Box::new(openai::ResponsesStream::default()),
        Api::AnthropicMessages => Box::new(anthropic::MessagesStream::default()),
        Api::BedrockConverse => Box::new(bedrock::ConverseStream::default()),
        Api::BedrockInvoke => Box::new(bedrock::InvokeStream::default()),
        Api::Gemini => Box::new(gemini::GeminiStream::default()),
        Api::OllamaChat | Api::OllamaGenerate | Api::OllamaEmbed => {
            Box::new(ollama::OllamaStream::default())
        }
    }
}

/// Generated output assembled from stream deltas: per choice, parts keyed by their block index.
#[derive(Debug, Default)]
pub(crate) struct OutputAcc {
    pub choices: BTreeMap<u64, ChoiceAcc>,
    /// Bound on accumulated text, so a runaway stream cannot grow memory without limit.
    pub bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct ChoiceAcc {
    pub role: Option<String>,
    pub parts: BTreeMap<u64, PartAcc>,
    pub finish: Option<String>,
}

#[derive(Debug)]
pub(crate) enum PartAcc {
    Text(String),
    Reasoning(String),
    Tool {
        id: Option<String>,
        name: String,
        arguments: String,
        /// Arguments that arrived as a JSON value rather than streamed text.
        value: Option<Value>,
    },
}

const MAX_ACCUMULATED: usize = 8 << 20;

impl OutputAcc {
    pub fn choice(&mut self, index: u64) -> &mut ChoiceAcc {
        self.choices.entry(index).or_default()
    }

    fn room(&mut self, len: usize) -> bool {
        if self.bytes + len > MAX_ACCUMULATED {
            return false;
        }
        self.bytes += len;
        true
    }

    pub fn push_text(&mut self, choice: u64, part: u64, delta: &str) {
        self.push_str(choice, part, delta, false);
    }

    pub fn push_reasoning(&mut self, choice: u64, part: u64, delta: &str) {
        self.push_str(choice, part, delta, true);
    }

    /// Appends to a text or reasoning part (created with the given kind when new).
    fn push_str(&mut self, choice: u64, part: u64, delta: &str, reasoning: bool) {
        if delta.is_empty() || !self.room(delta.len()) {
            return;
        }
        let entry = self.choice(choice).parts.entry(part).or_insert_with(|| {
            if reasoning {
                PartAcc::Reasoning(String::new())
            } else {
                PartAcc::Text(String::new())
            }
        });
        match entry {
            PartAcc::Text(text) | PartAcc::Reasoning(text) => text.push_str(delta),
            PartAcc::Tool { arguments, .. } => arguments.push_str(delta),
        }
    }

    /// Starts or extends a tool call; `id`/`name` fill in when given, `arguments` append.
    pub fn push_tool(
        &mut self,
        choice: u64,
        part: u64,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
    ) {
        if !self.room(arguments.len()) {
            return;
        }
        let entry = self
            .choice(choice)
            .parts
            .entry(part)
            .or_insert(PartAcc::Tool {
                id: None,
                name: String::new(),
                arguments: String::new(),
                value: None,
            });
        if let PartAcc::Tool {
            id: tool_id,
            name: tool_name,
            arguments: args,
            ..
        } = entry
        {
            if let Some(id) = id.filter(|s| !s.is_empty()) {
                *tool_id = Some(id.to_string());
            }
            if let Some(name) = name.filter(|s| !s.is_empty()) {
                *tool_name = name.to_string();
            }
            args.push_str(arguments);
        }
    }

    pub fn set_finish(&mut self, choice: u64, reason: &str) {
        self.choice(choice).finish = Some(reason.to_string());
    }

    /// Finish reasons in choice order (raw provider values).
    pub fn finish_reasons(&self) -> Vec<String> {
        self.choices
            .values()
            .filter_map(|c| c.finish.clone())
            .collect()
    }

    /// OTel output messages, one per choice.
    pub fn messages(&self) -> Vec<Value> {
        self.choices
            .values()
            .map(|choice| {
                let parts = choice
                    .parts
                    .values()
                    .map(|part| match part {
                        PartAcc::Text(text) => content::text(text),
                        PartAcc::Reasoning(text) => content::reasoning(text),
                        PartAcc::Tool {
                            id,
                            name,
                            arguments,
                            value,
                        } => content::tool_call(
                            id.as_deref(),
                            name,
                            value
                                .clone()
                                .unwrap_or_else(|| Value::String(arguments.clone())),
                        ),
                    })
                    .collect();
                content::output_message(
                    choice.role.as_deref().unwrap_or("assistant"),
                    parts,
                    choice
                        .finish
                        .as_deref()
                        .map(content::otel_finish_reason)
                        .as_deref(),
                )
            })
            .collect()
    }

    /// Writes finish reasons and, when allowed, output messages into the span.
    pub fn write(&self, span: &mut Span, policy: ContentPolicy) {
        let reasons = self.finish_reasons();
        if !reasons.is_empty() {
            span.finish_reasons = reasons;
        }
        if policy.capture && !self.choices.is_empty() {
            span.output_messages = content::to_json_text(self.messages());
        }
    }
}

/// Token counts after normalisation (reference §7.5): input includes cached tokens, output includes
/// reasoning. Only known values are written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tokens {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cache_read: Option<i64>,
    pub cache_creation: Option<i64>,
    pub reasoning: Option<i64>,
}

impl Tokens {
    pub fn write(self, span: &mut Span) {
        let keep = |v: Option<i64>| v.filter(|n| *n >= 0);
        if let Some(v) = keep(self.input) {
            span.input_tokens = Some(v);
        }
        if let Some(v) = keep(self.output) {
            span.output_tokens = Some(v);
        }
        if let Some(v) = keep(self.cache_read) {
            span.cache_read_tokens = Some(v);
        }
        if let Some(v) = keep(self.cache_creation) {
            span.cache_creation_tokens = Some(v);
        }
        if let Some(v) = keep(self.reasoning) {
            span.reasoning_tokens = Some(v);
        }
    }
}

/// Small JSON accessors.
pub(crate) fn int(v: &Value, pointer: &str) -> Option<i64> {
    let found = v.pointer(pointer)?;
    found.as_i64().or_else(|| {
        found
            .as_f64()
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

pub(crate) fn float(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer)?.as_f64()
}

pub(crate) fn string(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)?.as_str().map(String::from)
}

/// Adds optional counts; the sum is known when the first is known.
pub(crate) fn add(base: Option<i64>, extra: &[Option<i64>]) -> Option<i64> {
    base.map(|b| b + extra.iter().flatten().sum::<i64>())
}

/// Records a stream error event.
pub(crate) fn stream_error(span: &mut Span, kind: Option<String>, message: Option<String>) {
    span.flag(crate::span::flags::STREAM_ERROR);
    span.error_type = kind.or(Some("_OTHER".into()));
    if message.is_some() {
        span.error_message = message;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;

    fn head(target: &str, host: &str) -> RequestHead {
        RequestHead {
            method: "POST".into(),
            target: target.into(),
            authority: Some(host.into()),
            headers: Headers::default(),
        }
    }

    #[test]
    fn classification_by_path_then_host() {
        let c = classify(&head("/v1/chat/completions", "api.openai.com"), None, None).unwrap();
        assert_eq!((c.api, c.provider.as_str()), (Api::OpenAiChat, "openai"));
        let c = classify(
            &head(
                "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
                "res.openai.azure.com",
            ),
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.provider, "azure.ai.openai");
        assert_eq!(c.path_model.as_deref(), Some("my-gpt4o"));
        let c = classify(
            &head(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream",
                "bedrock-runtime.us-east-1.amazonaws.com",
            ),
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.api, Api::BedrockConverse);
        assert!(c.path_streaming);
        assert_eq!(
            c.path_model.as_deref(),
            Some("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123")
        );
        let c = classify(
            &head(
                "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                "us-central1-aiplatform.googleapis.com",
            ),
            None,
            None,
        )
        .unwrap();
        assert_eq!((c.api, c.provider.as_str()), (Api::Gemini, "gcp.vertex_ai"));
        assert_eq!(c.path_model.as_deref(), Some("gemini-2.5-pro"));
        let c = classify(&head("/api/chat", "localhost:11434"), None, None).unwrap();
        assert_eq!((c.api, c.provider.as_str()), (Api::OllamaChat, "ollama"));
        let c = classify(&head("/v1/chat/completions", "10.0.0.5:8000"), None, None).unwrap();
        assert_eq!(c.provider, "openai_compatible");
        let body = serde_json::json!({"query": "x"});
        assert!(classify(&head("/v1/chat/completions", "x"), None, Some(&body)).is_none());
        assert!(classify(&head("/healthz", "x"), None, None).is_none());
    }
}
