//! OpenAI and everything shaped like it: Chat Completions, the Responses API, legacy Completions and
//! Embeddings, as spoken by OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM, llama.cpp,
//! LiteLLM, OpenRouter, Groq, DeepSeek, Mistral, Together, Ollama's `/v1`).

use serde_json::Value;

use super::{
    Api, Call, ContentPolicy, OutputAcc, StreamDecoder, Tokens, error_of, float, int, string,
};
use crate::content;
use crate::framing::Frame;
use crate::span::Span;

pub(super) fn request(call: &Call, body: &Value, span: &mut Span, policy: ContentPolicy) {
    span.request_model = string(body, "/model").or_else(|| call.path_model.clone());
    if call.path_model.is_some() && call.provider == "azure.ai.openai" {
        // Classic Azure paths name the deployment; the body's model (if any) is ignored by Azure.
        span.request_model = call.path_model.clone();
    }
    span.temperature = float(body, "/temperature");
    span.top_p = float(body, "/top_p");
    span.max_tokens = int(body, "/max_completion_tokens")
        .or_else(|| int(body, "/max_tokens"))
        .or_else(|| int(body, "/max_output_tokens"));
    span.streaming = Some(body.get("stream").and_then(Value::as_bool).unwrap_or(false));
    if let Some(n) = int(body, "/n").filter(|n| *n != 1) {
        span.attributes
            .insert("gen_ai.request.choice.count".into(), n.to_string());
    }
    if call.api == Api::OpenAiResponses {
        span.attributes
            .insert("openai.api.type".into(), "responses".into());
    }
    if !policy.capture {
        return;
    }
    match call.api {
        Api::OpenAiChat => {
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .map(|m| m.iter().map(chat_message).collect())
                .unwrap_or_default();
            span.input_messages = content::to_json_text(messages);
        }
        Api::OpenAiCompletions => {
            span.input_messages = prompt_messages(body.get("prompt"));
        }
        Api::OpenAiEmbeddings => {
            span.input_messages = prompt_messages(body.get("input"));
        }
        Api::OpenAiResponses => {
            let messages = match body.get("input") {
                Some(Value::String(s)) => vec![content::message("user", vec![content::text(s)])],
                Some(Value::Array(items)) => {
                    items.iter().filter_map(responses_input_item).collect()
                }
                _ => Vec::new(),
            };
            span.input_messages = content::to_json_text(messages);
            if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
                span.system_instructions = content::to_json_text(vec![content::text(instructions)]);
            }
        }
        _ => {}
    }
    if let Some(tools) = body
        .get("tools")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        span.tool_definitions = Some(tools.to_string());
    }
}

/// Prompt or embedding input (string, list of strings, or token arrays) as one user message.
fn prompt_messages(prompt: Option<&Value>) -> Option<String> {
    let parts: Vec<Value> = match prompt? {
        Value::String(s) => vec![content::text(s)],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(content::text)
            .collect(),
        Value::Array(items) => vec![content::text(&format!("[{} token inputs]", items.len()))],
        _ => return None,
    };
    content::to_json_text(vec![content::message("user", parts)])
}

fn chat_message(message: &Value) -> Value {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let mut parts = content::parts_of(message.get("content").unwrap_or(&Value::Null));
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            parts.push(content::tool_call(
                call.get("id").and_then(Value::as_str),
                call.pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                call.pointer("/function/arguments")
                    .cloned()
                    .unwrap_or(Value::Null),
            ));
        }
    }
    if role == "tool" || role == "function" {
        let response = message.get("content").cloned().unwrap_or(Value::Null);
        parts = vec![content::tool_call_response(
            message.get("tool_call_id").and_then(Value::as_str),
            response,
        )];
    }
    let mut out = content::message(role, parts);
    if let Some(name) = message.get("name").and_then(Value::as_str) {
        out["name"] = name.into();
    }
    out
}

fn responses_input_item(item: &Value) -> Option<Value> {
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        Some("function_call") => Some(content::message(
            "assistant",
            vec![content::tool_call(
                item.get("call_id").and_then(Value::as_str),
                item.get("name").and_then(Value::as_str).unwrap_or_default(),
                item.get("arguments").cloned().unwrap_or(Value::Null),
            )],
        )),
        Some("function_call_output") => Some(content::message(
            "tool",
            vec![content::tool_call_response(
                item.get("call_id").and_then(Value::as_str),
                item.get("output").cloned().unwrap_or(Value::Null),
            )],
        )),
        Some("reasoning") => None,
        _ => {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
            Some(content::message(
                role,
                content::parts_of(item.get("content").unwrap_or(&Value::Null)),
            ))
        }
    }
}

/// Usage of Chat/Completions/Embeddings (`prompt_tokens` …) or of Responses (`input_tokens` …).
fn usage_tokens(usage: &Value) -> Tokens {
    if usage.get("input_tokens").is_some() {
        return Tokens {
            input: int(usage, "/input_tokens"),
            output: int(usage, "/output_tokens"),
            cache_read: int(usage, "/input_tokens_details/cached_tokens"),
            cache_creation: None,
            reasoning: int(usage, "/output_tokens_details/reasoning_tokens"),
        };
    }
    Tokens {
        input: int(usage, "/prompt_tokens"),
        output: int(usage, "/completion_tokens"),
        // DeepSeek reports cache hits beside the OpenAI field.
        cache_read: int(usage, "/prompt_tokens_details/cached_tokens")
            .or_else(|| int(usage, "/prompt_cache_hit_tokens")),
        cache_creation: None,
        reasoning: int(usage, "/completion_tokens_details/reasoning_tokens"),
    }
}

/// Provider refinements visible only in responses (compatible servers identify themselves).
fn fingerprint(json: &Value, span: &mut Span) {
    if span.provider.as_deref() != Some("openai_compatible") {
        return;
    }
    let provider = if json.get("x_groq").is_some() {
        "groq"
    } else if json.get("timings").is_some() {
        "llama_cpp"
    } else if json.get("system_fingerprint").and_then(Value::as_str) == Some("fp_ollama") {
        "ollama"
    } else {
        return;
    };
    span.provider = Some(provider.into());
}

pub(super) fn response(call: &Call, json: &Value, span: &mut Span, policy: ContentPolicy) {
    if call.api == Api::OpenAiResponses {
        return responses_object(json, span, policy);
    }
    span.response_model = string(json, "/model").filter(|m| !m.is_empty());
    span.response_id = string(json, "/id");
    fingerprint(json, span);
    if let Some(usage) = json.get("usage") {
        usage_tokens(usage).write(span);
    }
    if call.api == Api::OpenAiEmbeddings {
        span.output_tokens = None;
        if let Some(first) = json.pointer("/data/0/embedding").and_then(Value::as_array) {
            span.attributes.insert(
                "gen_ai.embeddings.dimension.count".into(),
                first.len().to_string(),
            );
        }
        return;
    }
    let mut acc = OutputAcc::default();
    for (position, choice) in json
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = int(choice, "/index").map_or(position as u64, |i| i as u64);
        let entry = acc.choice(index);
        entry.role = string(choice, "/message/role");
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            acc.set_finish(index, reason);
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            acc.push_text(index, 1, text);
        }
        let message = choice.get("message").unwrap_or(&Value::Null);
        for key in ["reasoning_content", "reasoning"] {
            if let Some(text) = message.get(key).and_then(Value::as_str) {
                acc.push_reasoning(index, 0, text);
            }
        }
        if let Some(text) = message.get("content").and_then(Value::as_str) {
            acc.push_text(index, 1, text);
        }
        if let Some(text) = message.get("refusal").and_then(Value::as_str) {
            acc.push_text(index, 2, text);
        }
        for (i, tool) in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            acc.push_tool(
                index,
                1000 + i as u64,
                tool.get("id").and_then(Value::as_str),
                tool.pointer("/function/name").and_then(Value::as_str),
                tool.pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
    }
    acc.write(span, policy);
}

/// A Responses API `response` object (unary body, or the payload of `response.completed`).
fn responses_object(json: &Value, span: &mut Span, policy: ContentPolicy) {
    span.response_model = string(json, "/model").or(span.response_model.take());
    span.response_id = string(json, "/id").or(span.response_id.take());
    if let Some(usage) = json.get("usage").filter(|u| !u.is_null()) {
        usage_tokens(usage).write(span);
    }
    let status = json.get("status").and_then(Value::as_str);
    if let Some(error) = json.get("error").filter(|e| !e.is_null()) {
        span.error_type = string(error, "/code").or(Some("response_failed".into()));
        span.error_message = string(error, "/message");
    }
    let mut acc = OutputAcc::default();
    let mut has_tool = false;
    for (i, item) in json
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = i as u64 * 100;
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for (j, part) in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let text = part
                        .get("text")
                        .or_else(|| part.get("refusal"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    acc.push_text(0, key + j as u64, text);
                }
            }
            Some("reasoning") => {
                for (j, part) in item
                    .get("summary")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                    acc.push_reasoning(0, key + j as u64, text);
                }
            }
            Some("function_call") => {
                has_tool = true;
                acc.push_tool(
                    0,
                    key,
                    item.get("call_id").and_then(Value::as_str),
                    item.get("name").and_then(Value::as_str),
                    item.get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
            }
            _ => {}
        }
    }
    // The Responses API has a status, not a finish reason; map it onto the chat vocabulary.
    let finish = match status {
        Some("completed") if has_tool => Some("tool_call"),
        Some("completed") => Some("stop"),
        Some("incomplete") => match string(json, "/incomplete_details/reason").as_deref() {
            Some("max_output_tokens") => Some("length"),
            Some("content_filter") => Some("content_filter"),
            _ => Some("incomplete"),
        },
        Some("failed") => Some("error"),
        _ => None,
    };
    if let Some(finish) = finish {
        acc.set_finish(0, finish);
    }
    acc.write(span, policy);
}

/// Chat Completions and legacy Completions streams (`data:` chunks, `[DONE]`).
#[derive(Default)]
pub(super) struct ChatStream {
    acc: OutputAcc,
    tokens: Option<Tokens>,
    done: bool,
}

impl StreamDecoder for ChatStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let data = match frame {
            Frame::Sse { event, data } => {
                if event == "error" {
                    let json: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    let (kind, message) = error_of(&json);
                    super::stream_error(span, kind, message.or(Some(data.clone())));
                    return false;
                }
                data.as_bytes()
            }
            Frame::Json(bytes) => bytes.as_slice(),
            Frame::EventStream(_) => return false,
        };
        if data.starts_with(b"[DONE]") {
            self.done = true;
            return false;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        if chunk.get("error").is_some() {
            let (kind, message) = error_of(&chunk);
            super::stream_error(span, kind, message);
            return false;
        }
        if let Some(model) = string(&chunk, "/model").filter(|m| !m.is_empty()) {
            span.response_model = Some(model);
        }
        // Azure's leading prompt-filter chunk has an empty id and model.
        if span.response_id.as_deref().is_none_or(str::is_empty) {
            span.response_id = string(&chunk, "/id").filter(|id| !id.is_empty());
        }
        fingerprint(&chunk, span);
        for usage in [chunk.get("usage"), chunk.pointer("/x_groq/usage")]
            .into_iter()
            .flatten()
        {
            if usage.is_object() {
                self.tokens = Some(usage_tokens(usage));
            }
        }
        let mut content_bearing = false;
        for (position, choice) in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = int(choice, "/index").map_or(position as u64, |i| i as u64);
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(role) = delta.get("role").and_then(Value::as_str) {
                self.acc.choice(index).role = Some(role.to_string());
            }
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.acc.push_reasoning(index, 0, text);
                    content_bearing = true;
                }
            }
            let text = delta
                .get("content")
                .or_else(|| choice.get("text"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !text.is_empty() {
                self.acc.push_text(index, 1, text);
                content_bearing = true;
            }
            if let Some(refusal) = delta
                .get("refusal")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.acc.push_text(index, 2, refusal);
                content_bearing = true;
            }
            for (i, tool) in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let tool_index = int(tool, "/index").map_or(i as u64, |t| t as u64);
                self.acc.push_tool(
                    index,
                    1000 + tool_index,
                    tool.get("id").and_then(Value::as_str),
                    tool.pointer("/function/name").and_then(Value::as_str),
                    tool.pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                content_bearing = true;
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.acc.set_finish(index, reason);
            }
        }
        content_bearing
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        if let Some(tokens) = self.tokens {
            tokens.write(span);
        }
        self.acc.write(span, policy);
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// Responses API streams (`event:` + `data:` with typed events).
#[derive(Default)]
pub(super) struct ResponsesStream {
    acc: OutputAcc,
    final_response: Option<Value>,
}

impl StreamDecoder for ResponsesStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let Frame::Sse { data, .. } = frame else {
            return false;
        };
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let output = int(&event, "/output_index").unwrap_or(0) as u64 * 100;
        let part = output + int(&event, "/content_index").unwrap_or(0) as u64;
        let delta = event
            .get("delta")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "response.created" | "response.in_progress" | "response.queued" => {
                span.response_model = string(&event, "/response/model");
                span.response_id = string(&event, "/response/id");
                false
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.acc.push_text(0, part, delta);
                !delta.is_empty()
            }
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                self.acc.push_reasoning(0, part, delta);
                !delta.is_empty()
            }
            "response.output_item.added" => {
                if let Some(item) = event
                    .get("item")
                    .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
                {
                    self.acc.push_tool(
                        0,
                        output,
                        item.get("call_id").and_then(Value::as_str),
                        item.get("name").and_then(Value::as_str),
                        "",
                    );
                }
                false
            }
            "response.function_call_arguments.delta" => {
                self.acc.push_tool(0, output, None, None, delta);
                true
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.final_response = event.get("response").cloned();
                false
            }
            "error" => {
                super::stream_error(span, string(&event, "/code"), string(&event, "/message"));
                false
            }
            _ => false,
        }
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        match &self.final_response {
            // The final response object is authoritative: it has usage, status and full output.
            Some(response) => {
                let had_error = span.has_flag(crate::span::flags::STREAM_ERROR);
                responses_object(response, span, policy);
                if had_error {
                    span.flag(crate::span::flags::STREAM_ERROR);
                }
            }
            None => self.acc.write(span, policy),
        }
    }

    fn done(&self) -> bool {
        self.final_response.is_some()
    }
}
