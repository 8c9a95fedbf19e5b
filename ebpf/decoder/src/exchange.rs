//! One HTTP exchange (request + response) independent of the HTTP version: the transports report
//! heads, body bytes, lost bytes and the end; this type decodes bodies (content encoding, stream
//! framing, the provider's format), times the first content event and builds the span.

use std::sync::Arc;

use serde_json::Value;

use crate::encoding::{BodyDecoder, Encoding};
use crate::framing::{Frame, Framer, Framing};
use crate::http::{RequestHead, ResponseHead, SECRET_HEADERS, parse_traceparent};
use crate::providers::{self, Call, StreamDecoder};
use crate::span::{Span, flags, fnv1a64};
use crate::{ConnInfo, DecoderConfig};

/// Bytes of a response sniffed before deciding how to decode it when the request was not seen.
const SNIFF_BYTES: usize = 256;

enum ResponseBody {
    /// No response head yet.
    Pending,
    /// Not an LLM call (or undecodable): bytes are only counted.
    Skip,
    /// A unary body, buffered until the end.
    Buffer { decoder: BodyDecoder, body: Vec<u8> },
    /// A streamed body, decoded event by event.
    Stream {
        decoder: BodyDecoder,
        framer: Framer,
        stream: Box<dyn StreamDecoder>,
        scratch: Vec<u8>,
        frames: Vec<Frame>,
    },
    /// Request unknown (HTTP/2 attached mid-connection): collect a few bytes, then decide.
    Sniff { decoder: BodyDecoder, body: Vec<u8> },
}

pub struct Exchange {
    config: Arc<DecoderConfig>,
    span: Span,
    request: Option<RequestHead>,
    request_decoder: Option<BodyDecoder>,
    request_body: Vec<u8>,
    request_complete: bool,
    request_applied: bool,
    call: Option<Call>,
    response_body: ResponseBody,
    response_headers: Option<ResponseHead>,
    response_started: bool,
    /// Bytes of the request (`request_lost`) or of the response were lost by the capture.
    request_lost: bool,
    response_lost: bool,
    last_ns: i64,
    first_content_ns: Option<i64>,
    peer_port: Option<u16>,
}

impl Exchange {
    /// Starts an exchange at its first request byte. `request` is `None` when the head could not be
    /// decoded (an HTTP/2 stream attached mid-connection).
    pub fn new(
        config: Arc<DecoderConfig>,
        conn: &ConnInfo,
        http_version: &str,
        start_ns: i64,
        request: Option<RequestHead>,
        seq: u64,
    ) -> Exchange {
        let mut span = Span {
            start_time: start_ns,
            source: config.source.clone(),
            span_kind: "client".into(),
            server_address: conn.peer_address.clone(),
            server_port: conn.peer_port,
            client_address: conn.local_address.clone(),
            tls_library: conn.tls_library.clone(),
            http_version: Some(http_version.to_string()),
            ..Span::default()
        };
        let id = fnv1a64(&[
            &conn.key.to_le_bytes(),
            &start_ns.to_le_bytes(),
            &seq.to_le_bytes(),
        ]);
        span.span_id = Some(format!("{id:016x}"));
        let mut call = None;
        let mut request_decoder = None;
        if let Some(head) = &request {
            span.http_method = Some(head.method.clone());
            span.url_path = Some(head.path().to_string());
            if let Some(query) = head.scrubbed_query() {
                span.attributes.insert("url.query".into(), query);
            }
            if let Some(host) = head.host() {
                span.server_address = Some(host);
            }
            // Without the socket's peer (a TLS library that does its own I/O, like Node's), the port is
            // the one the request names, or the scheme's default.
            if span.server_port.is_none() {
                span.server_port = head.authority_port().or(match conn.tls_library.as_deref() {
                    Some("plaintext") | None => None,
                    Some(_) => Some(443),
                });
            }
            if let Some((trace_id, parent)) =
                head.headers.get("traceparent").and_then(parse_traceparent)
            {
                span.trace_id = Some(trace_id);
                span.parent_span_id = Some(parent);
            }
            if let Some(agent) = head.headers.get("user-agent") {
                span.attributes
                    .insert("user_agent.original".into(), agent.to_string());
            }
            call = providers::classify(head, conn.peer_port, None);
            if call.is_some() {
                request_decoder = match Encoding::parse(head.headers.get("content-encoding")) {
                    Ok(encoding) => Some(BodyDecoder::new(encoding, config.max_request_body)),
                    Err(_) => {
                        span.flag(flags::UNDECODABLE);
                        None
                    }
                };
            }
        } else {
            span.flag(flags::MID_STREAM_ATTACH);
            // The body may still name the model; it is parsed once the response shows the API.
            request_decoder = Some(BodyDecoder::new(
                Encoding::Identity,
                config.max_request_body,
            ));
        }
        if let Some(call) = &call {
            span.provider = Some(call.provider.clone());
            span.operation = Some(call.operation.to_string());
            span.request_model = call.path_model.clone();
        }
        Exchange {
            config,
            span,
            request,
            request_decoder,
            request_body: Vec::new(),
            request_complete: false,
            request_applied: false,
            call,
            response_body: ResponseBody::Pending,
            response_headers: None,
            response_started: false,
            request_lost: false,
            response_lost: false,
            last_ns: start_ns,
            first_content_ns: None,
            peer_port: conn.peer_port,
        }
    }

    pub fn start_ns(&self) -> i64 {
        self.span.start_time
    }

    pub fn method(&self) -> &str {
        self.span.http_method.as_deref().unwrap_or_default()
    }

    pub fn has_response(&self) -> bool {
        self.response_started
    }

    pub fn request_data(&mut self, ts: i64, data: &[u8]) {
        self.touch(ts);
        *self.span.request_bytes.get_or_insert(0) += data.len() as u64;
        if let Some(decoder) = &mut self.request_decoder {
            if decoder.feed(data, &mut self.request_body).is_err() {
                self.span.flag(flags::UNDECODABLE);
                self.request_decoder = None;
            } else if decoder.capped() {
                self.span.flag(flags::TRUNCATED);
            }
        }
    }

    pub fn request_end(&mut self, ts: i64) {
        self.touch(ts);
        self.request_complete = true;
        self.apply_request();
    }

    /// Bytes of the request (`request_side`) or of the response were lost: that side's body cannot be
    /// trusted to line up. The other side is still decoded (a response names the model and the tokens
    /// even when the request had a hole).
    pub fn lost(&mut self, request_side: bool) {
        self.span.flag(flags::TRUNCATED);
        if request_side {
            self.request_lost = true;
            self.request_decoder = None;
        } else {
            self.response_lost = true;
            if !matches!(self.response_body, ResponseBody::Pending) {
                self.response_body = ResponseBody::Skip;
            }
        }
    }

    fn touch(&mut self, ts: i64) {
        self.last_ns = self.last_ns.max(ts);
    }

    /// Parses the request body once; re-classifies with the body's shape. A head-less request waits
    /// until its response has shown which API it is.
    fn apply_request(&mut self) {
        if self.request_applied || (self.request.is_none() && self.call.is_none()) {
            return;
        }
        self.request_applied = true;
        if self.call.is_none() {
            return;
        }
        let body: Option<Value> = if self.request_decoder.is_some() && !self.request_lost {
            serde_json::from_slice(&self.request_body).ok()
        } else {
            None
        };
        let Some(head) = &self.request else {
            if let (Some(call), Some(body)) = (&self.call, &body) {
                providers::apply_request(call, body, &mut self.span, self.config.policy);
            }
            self.request_body = Vec::new();
            return;
        };
        if body.is_none() && !self.request_body.is_empty() && !self.request_lost {
            self.span.flag(flags::UNDECODABLE);
        }
        if let Some(body) = &body {
            // The body's shape confirms (or rules out) what the path suggested.
            self.call = providers::classify(head, self.peer_port, Some(body));
            match &self.call {
                Some(call) => {
                    self.span.operation = Some(call.operation.to_string());
                    providers::apply_request(call, body, &mut self.span, self.config.policy)
                }
                None => {
                    self.span.provider = None;
                    self.span.operation = None;
                    self.span.request_model = None;
                }
            }
        }
        self.request_body = Vec::new();
    }

    pub fn response_head(&mut self, ts: i64, head: ResponseHead) {
        self.touch(ts);
        self.response_started = true;
        self.apply_request();
        self.span.http_status = Some(head.status);
        if let Some(id) = head
            .headers
            .get("x-request-id")
            .or_else(|| head.headers.get("request-id"))
            .or_else(|| head.headers.get("x-amzn-requestid"))
        {
            self.span
                .attributes
                .insert("http.response.request_id".into(), id.to_string());
        }
        if let Some(call) = &self.call {
            if head
                .headers
                .0
                .iter()
                .any(|(n, _)| n.to_ascii_lowercase().starts_with("x-litellm-"))
                && self.span.provider.as_deref() == Some("openai_compatible")
            {
                self.span.provider = Some("litellm".into());
            }
            let encoding = match Encoding::parse(head.headers.get("content-encoding")) {
                Ok(encoding) => encoding,
                Err(_) => {
                    self.span.flag(flags::UNDECODABLE);
                    self.response_body = ResponseBody::Skip;
                    return;
                }
            };
            let decoder = BodyDecoder::new(encoding, self.config.max_response_body);
            let content_type = head.headers.content_type();
            let alt_sse = self.request.as_ref().and_then(|r| r.query_param("alt")) == Some("sse");
            let framing = if head.status >= 400 {
                None
            } else {
                providers::stream_framing(call, content_type.as_deref(), alt_sse)
            };
            self.response_body = match framing {
                Some(framing) => self.stream_body(decoder, framing, call.clone()),
                None => ResponseBody::Buffer {
                    decoder,
                    body: Vec::new(),
                },
            };
            self.response_headers = Some(head);
        } else if self.request.is_none() {
            let encoding =
                Encoding::parse(head.headers.get("content-encoding")).unwrap_or(Encoding::Identity);
            self.response_body = ResponseBody::Sniff {
                decoder: BodyDecoder::new(encoding, self.config.max_response_body),
                body: Vec::new(),
            };
            self.response_headers = Some(head);
        } else {
            self.response_body = ResponseBody::Skip;
        }
    }

    fn stream_body(&mut self, decoder: BodyDecoder, framing: Framing, call: Call) -> ResponseBody {
        self.span.streaming = Some(true);
        ResponseBody::Stream {
            decoder,
            framer: Framer::new(framing, self.config.max_response_body),
            stream: providers::stream_decoder(&call),
            scratch: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Response bytes (HTTP/1 de-chunked, or HTTP/2 DATA payloads).
    pub fn response_data(&mut self, ts: i64, data: &[u8]) {
        self.touch(ts);
        if !self.response_started {
            // DATA without a decodable HEADERS frame (HTTP/2 mid-connection attach).
            self.response_started = true;
            self.response_body = ResponseBody::Sniff {
                decoder: BodyDecoder::new(Encoding::Identity, self.config.max_response_body),
                body: Vec::new(),
            };
        }
        *self.span.response_bytes.get_or_insert(0) += data.len() as u64;
        match &mut self.response_body {
            ResponseBody::Pending | ResponseBody::Skip => {}
            ResponseBody::Buffer { decoder, body } => {
                if decoder.feed(data, body).is_err() {
                    self.span.flag(flags::UNDECODABLE);
                    self.response_body = ResponseBody::Skip;
                } else if decoder.capped() {
                    self.span.flag(flags::TRUNCATED);
                }
            }
            ResponseBody::Sniff { decoder, body } => {
                if decoder.feed(data, body).is_err() {
                    self.response_body = ResponseBody::Skip;
                } else if body.len() >= SNIFF_BYTES {
                    self.resolve_sniff(ts);
                }
            }
            ResponseBody::Stream {
                decoder,
                framer,
                stream,
                scratch,
                frames,
            } => {
                scratch.clear();
                if decoder.feed(data, scratch).is_err() {
                    self.span.flag(flags::UNDECODABLE);
                    self.response_body = ResponseBody::Skip;
                    return;
                }
                framer.feed(scratch, frames);
                for frame in frames.drain(..) {
                    if stream.on_frame(&frame, &mut self.span) && self.first_content_ns.is_none() {
                        self.first_content_ns = Some(ts);
                    }
                }
                for error in framer.take_errors() {
                    self.span.flag(match error {
                        crate::framing::FrameError::EventTooLarge => flags::TRUNCATED,
                        crate::framing::FrameError::Corrupt(_) => flags::UNDECODABLE,
                    });
                }
            }
        }
    }

    /// Decides how to decode a response whose request was not seen, from its first bytes.
    fn resolve_sniff(&mut self, ts: i64) {
        let ResponseBody::Sniff { body, .. } = &mut self.response_body else {
            return;
        };
        let body = std::mem::take(body);
        match providers::sniff_response(&body) {
            Some((call, framing)) => {
                self.span.provider = Some(call.provider.clone());
                self.span.operation = Some(call.operation.to_string());
                self.response_body = match framing {
                    Some(framing) => self.stream_body(
                        BodyDecoder::new(Encoding::Identity, self.config.max_response_body),
                        framing,
                        call.clone(),
                    ),
                    None => ResponseBody::Buffer {
                        decoder: BodyDecoder::new(
                            Encoding::Identity,
                            self.config.max_response_body,
                        ),
                        body: Vec::new(),
                    },
                };
                self.call = Some(call);
                self.apply_request();
                // Replays the sniffed bytes (already decompressed) through the chosen decoder; the byte
                // count was taken when they arrived.
                let counted = self.span.response_bytes;
                self.response_data(ts, &body);
                self.span.response_bytes = counted;
            }
            None => self.response_body = ResponseBody::Skip,
        }
    }

    /// Ends the exchange. `complete` is false when the response did not end as its framing said
    /// (connection closed or stream reset mid-body, or no response at all).
    pub fn finish(mut self, end_ns: i64, complete: bool) -> Span {
        self.touch(end_ns);
        self.apply_request();
        if matches!(self.response_body, ResponseBody::Sniff { .. }) {
            self.resolve_sniff(end_ns);
        }
        // A stream whose own end marker arrived is whole even if the connection then closed early
        // (clients hang up right after `[DONE]`).
        let stream_done =
            matches!(&self.response_body, ResponseBody::Stream { stream, .. } if stream.done());
        if (!complete && !stream_done) || !self.response_started {
            self.span.flag(flags::TRUNCATED);
        }
        let policy = self.config.policy;
        let head = self.response_headers.take().unwrap_or_default();
        match std::mem::replace(&mut self.response_body, ResponseBody::Skip) {
            ResponseBody::Buffer { body, .. } => {
                if self.call.is_some() && self.span.streaming.is_none() {
                    self.span.streaming = Some(false);
                }
                if let Some(call) = &self.call {
                    let status = self.span.http_status.unwrap_or(200);
                    if self.response_lost {
                        // A body with holes is not parsed: no made-up numbers.
                    } else {
                        providers::apply_response(
                            call,
                            status,
                            &head.headers,
                            &body,
                            &mut self.span,
                            policy,
                        );
                    }
                }
            }
            ResponseBody::Stream {
                mut framer,
                mut stream,
                mut frames,
                ..
            } => {
                framer.finish(&mut frames);
                for frame in frames.drain(..) {
                    if stream.on_frame(&frame, &mut self.span) && self.first_content_ns.is_none() {
                        self.first_content_ns = Some(self.last_ns);
                    }
                }
                stream.finish(&mut self.span, policy);
            }
            _ => {}
        }
        let span = &mut self.span;
        if span.provider.is_none() {
            // Plain HTTP: the exchange stays (it feeds the service map) without any body content.
            span.request_bytes = span.request_bytes.or(Some(0));
            if let Some(status) = span.http_status.filter(|s| *s >= 400) {
                span.error_type = Some(status.to_string());
            }
        } else if let Some(status) = span.http_status.filter(|s| *s >= 400)
            && span.error_type.is_none()
        {
            span.error_type = Some(status.to_string());
        }
        if span.streaming == Some(true)
            && let Some(first) = self.first_content_ns
        {
            span.ttft_ms = Some((first - span.start_time) as f64 / 1e6);
        }
        span.end_time = Some(self.last_ns);
        span.duration_ms = Some((self.last_ns - span.start_time) as f64 / 1e6);
        if span.provider.is_some() {
            span.cost_usd = self.config.prices.cost(span);
        }
        if !policy.capture {
            span.flag(flags::CONTENT_DROPPED);
        }
        debug_assert!(
            SECRET_HEADERS
                .iter()
                .all(|h| !span.attributes.contains_key(*h)),
            "credential headers never become attributes"
        );
        self.span
    }
}
