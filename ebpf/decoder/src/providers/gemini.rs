//! Google Gemini (`generateContent`, `streamGenerateContent` as SSE or as a streamed JSON array) and
//! Vertex AI's Gemini paths. Field names are camelCase on the wire; Google also accepts snake_case in
//! requests, so both are read. Stream usage is cumulative: the last `usageMetadata` wins.

use serde_json::Value;

use super::{Call, ContentPolicy, OutputAcc, StreamDecoder, Tokens, add, error_of, int, string};
use crate::content;
use crate::framing::Frame;
use crate::span::Span;

/// A field under its camelCase or snake_case name.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

pub(super) fn request(call: &Call, body: &Value, span: &mut Span, policy: ContentPolicy) {
    span.streaming = Some(call.path_streaming);
    if let Some(config) = field(body, "generationConfig", "generation_config") {
        span.temperature = config.get("temperature").and_then(Value::as_f64);
        span.top_p = field(config, "topP", "top_p").and_then(Value::as_f64);
        span.max_tokens =
            field(config, "maxOutputTokens", "max_output_tokens").and_then(Value::as_i64);
        if let Some(n) = field(config, "candidateCount", "candidate_count")
            .and_then(Value::as_i64)
            .filter(|n| *n != 1)
        {
            span.attributes
                .insert("gen_ai.request.choice.count".into(), n.to_string());
        }
    }
    if !policy.capture {
        return;
    }
    let messages: Vec<Value> = body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let role = match c.get("role").and_then(Value::as_str) {
                Some("model") => "assistant",
                Some(other) => other,
                None => "user",
            };
            let parts: Vec<Value> = c
                .get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(part)
                .collect();
            let all_results =
                !parts.is_empty() && parts.iter().all(|p| p["type"] == "tool_call_response");
            content::message(if all_results { "tool" } else { role }, parts)
        })
        .collect();
    span.input_messages = content::to_json_text(messages);
    if let Some(system) = field(body, "systemInstruction", "system_instruction") {
        let parts = system
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(part)
            .collect();
        span.system_instructions = content::to_json_text(parts);
    }
    if let Some(tools) = body
        .get("tools")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        span.tool_definitions = Some(tools.to_string());
    }
}

fn part(p: &Value) -> Option<Value> {
    if let Some(text) = p.get("text").and_then(Value::as_str) {
        return Some(if p.get("thought").and_then(Value::as_bool) == Some(true) {
            content::reasoning(text)
        } else {
            content::text(text)
        });
    }
    if let Some(call) = field(p, "functionCall", "function_call") {
        return Some(content::tool_call(
            call.get("id").and_then(Value::as_str),
            call.get("name").and_then(Value::as_str).unwrap_or_default(),
            call.get("args").cloned().unwrap_or(Value::Null),
        ));
    }
    if let Some(response) = field(p, "functionResponse", "function_response") {
        return Some(content::tool_call_response(
            response
                .get("id")
                .and_then(Value::as_str)
                .or_else(|| response.get("name").and_then(Value::as_str)),
            response.get("response").cloned().unwrap_or(Value::Null),
        ));
    }
    if let Some(data) = field(p, "inlineData", "inline_data") {
        let mime = field(data, "mimeType", "mime_type").and_then(Value::as_str);
        let modality = mime.and_then(|m| m.split('/').next()).unwrap_or("image");
        return Some(content::blob(
            modality,
            mime,
            data.get("data").and_then(Value::as_str).map_or(0, str::len),
        ));
    }
    if let Some(file) = field(p, "fileData", "file_data") {
        return Some(content::uri(
            "file",
            file.get("fileUri")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ));
    }
    None // thoughtSignature-only parts and executable-code bookkeeping
}

fn usage_tokens(usage: &Value) -> Tokens {
    let thoughts = int(usage, "/thoughtsTokenCount");
    Tokens {
        input: add(
            int(usage, "/promptTokenCount"),
            &[int(usage, "/toolUsePromptTokenCount")],
        ),
        // Gemini reports thinking beside the candidates; OTel output includes reasoning.
        output: match (int(usage, "/candidatesTokenCount"), thoughts) {
            (None, None) => None,
            (candidates, thoughts) => Some(candidates.unwrap_or(0) + thoughts.unwrap_or(0)),
        },
        cache_read: int(usage, "/cachedContentTokenCount"),
        cache_creation: None,
        reasoning: thoughts,
    }
}

/// Applies one GenerateContentResponse (a unary body or a stream chunk); true when it had content.
fn apply_chunk(
    json: &Value,
    span: &mut Span,
    acc: &mut OutputAcc,
    usage: &mut Option<Tokens>,
) -> bool {
    if let Some(model) = string(json, "/modelVersion") {
        span.response_model = Some(model);
    }
    if let Some(id) = string(json, "/responseId") {
        span.response_id = Some(id);
    }
    if let Some(u) = json.get("usageMetadata") {
        *usage = Some(usage_tokens(u));
    }
    if let Some(reason) = string(json, "/promptFeedback/blockReason") {
        span.error_type = Some(reason.clone());
        span.error_message = Some(format!("prompt blocked: {reason}"));
    }
    let mut content_bearing = false;
    for (position, candidate) in json
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = int(candidate, "/index").map_or(position as u64, |i| i as u64);
        acc.choice(index).role = Some("assistant".into());
        for p in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(text) = p.get("text").and_then(Value::as_str) {
                // Consecutive text pieces of one kind join into one part; a change of kind starts a new one.
                let thought = p.get("thought").and_then(Value::as_bool) == Some(true);
                let parts = &acc.choice(index).parts;
                let last = parts.keys().next_back().copied();
                let same_kind = last.and_then(|k| parts.get(&k)).is_some_and(|part| {
                    matches!(
                        (part, thought),
                        (super::PartAcc::Reasoning(_), true) | (super::PartAcc::Text(_), false)
                    )
                });
                let key = match last {
                    Some(k) if same_kind => k,
                    Some(k) => k + 1,
                    None => 0,
                };
                if thought {
                    acc.push_reasoning(index, key, text);
                } else {
                    acc.push_text(index, key, text);
                }
                content_bearing |= !text.is_empty();
            } else if let Some(call) = p.get("functionCall") {
                let key = acc
                    .choice(index)
                    .parts
                    .keys()
                    .next_back()
                    .map_or(0, |k| k + 1);
                acc.push_tool(
                    index,
                    key,
                    call.get("id").and_then(Value::as_str),
                    call.get("name").and_then(Value::as_str),
                    "",
                );
                if let Some(super::PartAcc::Tool { value, .. }) =
                    acc.choice(index).parts.get_mut(&key)
                {
                    *value = call.get("args").cloned();
                }
                content_bearing = true;
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            acc.set_finish(index, reason);
        }
    }
    content_bearing
}

pub(super) fn response(json: &Value, span: &mut Span, policy: ContentPolicy) {
    let mut acc = OutputAcc::default();
    let mut usage = None;
    apply_chunk(json, span, &mut acc, &mut usage);
    if let Some(tokens) = usage {
        tokens.write(span);
    }
    acc.write(span, policy);
}

#[derive(Default)]
pub(super) struct GeminiStream {
    acc: OutputAcc,
    usage: Option<Tokens>,
}

impl StreamDecoder for GeminiStream {
    fn on_frame(&mut self, frame: &Frame, span: &mut Span) -> bool {
        let data = match frame {
            Frame::Sse { data, .. } => data.as_bytes(),
            Frame::Json(bytes) => bytes,
            Frame::EventStream(_) => return false,
        };
        let Ok(json) = serde_json::from_slice::<Value>(data) else {
            span.flag(crate::span::flags::UNDECODABLE);
            return false;
        };
        if json.get("error").is_some() {
            let (kind, message) = error_of(&json);
            super::stream_error(span, kind, message);
            return false;
        }
        apply_chunk(&json, span, &mut self.acc, &mut self.usage)
    }

    fn finish(&mut self, span: &mut Span, policy: ContentPolicy) {
        if let Some(tokens) = self.usage {
            tokens.write(span);
        }
        self.acc.write(span, policy);
    }

    fn done(&self) -> bool {
        !self.acc.choices.is_empty() && self.acc.choices.values().all(|c| c.finish.is_some())
    }
}
