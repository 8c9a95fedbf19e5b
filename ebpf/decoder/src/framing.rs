//! Stream framings inside a response body: Server-Sent Events (the WHATWG algorithm), NDJSON, a JSON
//! array streamed element by element (Gemini without `alt=sse`) and AWS `vnd.amazon.eventstream`.
//! Each framer takes body bytes in arbitrary pieces and yields whole events; chunk boundaries carry no
//! meaning. Buffers are bounded by `max_event`; an event beyond it is dropped and reported.

use aws_smithy_eventstream::frame::read_message_from;
use bytes::BytesMut;

/// One event out of a framed stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// An SSE event: its `event:` type (empty when absent) and its joined `data:` lines.
    Sse { event: String, data: String },
    /// One JSON document: an NDJSON line or an element of a streamed JSON array.
    Json(Vec<u8>),
    /// One AWS eventstream message.
    EventStream(EventStreamMessage),
}

/// The parts of an eventstream message the decoder uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventStreamMessage {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type` for events, `:exception-type` for exceptions, `:error-code` for errors.
    pub kind: String,
    pub payload: Vec<u8>,
    /// `:error-message` of `error` messages.
    pub error_message: Option<String>,
}

/// What went wrong while framing; the framer stops at the first corrupt eventstream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// An event grew beyond the bound and was dropped.
    EventTooLarge,
    /// An eventstream frame failed its CRC or length checks.
    Corrupt(String),
}

/// Which framing a body uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    Ndjson,
    JsonArray,
    EventStream,
}

/// An incremental framer for one body.
pub struct Framer {
    kind: FramerKind,
    max_event: usize,
    errors: Vec<FrameError>,
}

enum FramerKind {
    Sse(SseState),
    Ndjson { line: Vec<u8>, overflow: bool },
    JsonArray(ArrayState),
    EventStream { buffer: BytesMut, failed: bool },
}

impl Framer {
    pub fn new(framing: Framing, max_event: usize) -> Framer {
        let kind = match framing {
            Framing::Sse => FramerKind::Sse(SseState::default()),
            Framing::Ndjson => FramerKind::Ndjson {
                line: Vec::new(),
                overflow: false,
            },
            Framing::JsonArray => FramerKind::JsonArray(ArrayState::default()),
            Framing::EventStream => FramerKind::EventStream {
                buffer: BytesMut::new(),
                failed: false,
            },
        };
        Framer {
            kind,
            max_event,
            errors: Vec::new(),
        }
    }

    /// Errors seen so far (drained).
    pub fn take_errors(&mut self) -> Vec<FrameError> {
        std::mem::take(&mut self.errors)
    }

    /// Feeds body bytes; appends completed events to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Frame>) {
        let max = self.max_event;
        match &mut self.kind {
            FramerKind::Sse(state) => state.feed(input, max, out, &mut self.errors),
            FramerKind::Ndjson { line, overflow } => {
                for &byte in input {
                    if byte == b'\n' {
                        if !*overflow {
                            emit_json_line(line, out);
                        }
                        line.clear();
                        *overflow = false;
                    } else if line.len() >= max {
                        if !*overflow {
                            self.errors.push(FrameError::EventTooLarge);
                        }
                        *overflow = true;
                    } else {
                        line.push(byte);
                    }
                }
            }
            FramerKind::JsonArray(state) => state.feed(input, max, out, &mut self.errors),
            FramerKind::EventStream { buffer, failed } => {
                if *failed {
                    return;
                }
                buffer.extend_from_slice(input);
                // Frames are cut by their declared length, then checked (CRCs, header lengths) whole.
                while buffer.len() >= 12 {
                    let total =
                        u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
                    if total < 16 || total > max.max(16) {
                        self.errors.push(FrameError::Corrupt(format!(
                            "eventstream frame length {total} is out of bounds"
                        )));
                        *failed = true;
                        buffer.clear();
                        return;
                    }
                    if buffer.len() < total {
                        break;
                    }
                    let frame = buffer.split_to(total);
                    match read_message_from(&frame[..]) {
                        Ok(message) => out.push(Frame::EventStream(convert_message(&message))),
                        Err(e) => {
                            self.errors.push(FrameError::Corrupt(e.to_string()));
                            *failed = true;
                            buffer.clear();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Ends the body: an NDJSON line without its final newline still counts; SSE's pending event is
    /// dropped, as the spec says.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        if let FramerKind::Ndjson { line, overflow } = &mut self.kind {
            if !*overflow {
                emit_json_line(line, out);
            }
            line.clear();
        }
    }
}

fn emit_json_line(line: &[u8], out: &mut Vec<Frame>) {
    let trimmed = line.trim_ascii();
    if !trimmed.is_empty() {
        out.push(Frame::Json(trimmed.to_vec()));
    }
}

fn convert_message(message: &aws_smithy_types::event_stream::Message) -> EventStreamMessage {
    let mut converted = EventStreamMessage {
        payload: message.payload().to_vec(),
        ..Default::default()
    };
    let (mut event_type, mut exception_type, mut error_code) = (None, None, None);
    for header in message.headers() {
        let Ok(value) = header.value().as_string() else {
            continue;
        };
        let value = value.as_str().to_string();
        match header.name().as_str() {
            ":message-type" => converted.message_type = value,
            ":event-type" => event_type = Some(value),
            ":exception-type" => exception_type = Some(value),
            ":error-code" => error_code = Some(value),
            ":error-message" => converted.error_message = Some(value),
            _ => {}
        }
    }
    converted.kind = match converted.message_type.as_str() {
        "exception" => exception_type,
        "error" => error_code,
        _ => event_type,
    }
    .unwrap_or_default();
    converted
}

/// WHATWG SSE parser state.
#[derive(Default)]
struct SseState {
    line: Vec<u8>,
    /// The previous byte was CR, so a following LF belongs to the same line break.
    after_cr: bool,
    started: bool,
    overflow: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseState {
    fn feed(
        &mut self,
        input: &[u8],
        max: usize,
        out: &mut Vec<Frame>,
        errors: &mut Vec<FrameError>,
    ) {
        let mut input = input;
        if !self.started && !input.is_empty() {
            // A UTF-8 byte order mark at the very start is ignored. (Split BOMs are not worth handling.)
            self.started = true;
            if let Some(rest) = input.strip_prefix(b"\xEF\xBB\xBF") {
                input = rest;
            }
        }
        for &byte in input {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    self.end_line(max, out);
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= max {
                        if !self.overflow {
                            errors.push(FrameError::EventTooLarge);
                        }
                        self.overflow = true;
                    } else {
                        self.line.push(byte);
                    }
                }
            }
        }
    }

    fn end_line(&mut self, max: usize, out: &mut Vec<Frame>) {
        let line = std::mem::take(&mut self.line);
        if self.overflow {
            // The oversized line is dropped along with the event it belonged to.
            self.overflow = false;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.is_empty() {
            if self.has_data {
                out.push(Frame::Sse {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // a comment: keep-alives and proxy chatter
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &b""[..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() <= max {
                    self.data.push_str(&String::from_utf8_lossy(value));
                }
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter for decoding
        }
    }
}

/// Splits a streamed JSON array (`[{..},{..}]`, with whitespace and commas between) into elements.
#[derive(Default)]
struct ArrayState {
    depth: u32,
    in_string: bool,
    escaped: bool,
    element: Vec<u8>,
    overflow: bool,
}

impl ArrayState {
    fn feed(
        &mut self,
        input: &[u8],
        max: usize,
        out: &mut Vec<Frame>,
        errors: &mut Vec<FrameError>,
    ) {
        for &byte in input {
            if self.depth >= 2
                || (self.depth == 1
                    && !matches!(byte, b'[' | b']' | b',')
                    && !byte.is_ascii_whitespace())
            {
                if self.element.len() >= max {
                    if !self.overflow {
                        errors.push(FrameError::EventTooLarge);
                    }
                    self.overflow = true;
                } else {
                    self.element.push(byte);
                }
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 1 && byte == b'}' {
                        if !self.overflow {
                            out.push(Frame::Json(std::mem::take(&mut self.element)));
                        }
                        self.element.clear();
                        self.overflow = false;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framing: Framing, input: &[u8], piece: usize) -> Vec<Frame> {
        let mut framer = Framer::new(framing, 1 << 20);
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            framer.feed(chunk, &mut out);
        }
        framer.finish(&mut out);
        out
    }

    fn sse(event: &str, data: &str) -> Frame {
        Frame::Sse {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn sse_follows_the_whatwg_rules() {
        let input = b"\xEF\xBB\xBF: keep-alive\r\n\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata:first\ndata: second\n\nevent: x\rdata: cr only\r\rdata: [DONE]\n\nid: 7\nretry: 10\n\ndata: pending";
        let expected = vec![
            sse("message_start", "{\"a\":1}"),
            sse("", "first\nsecond"),
            sse("x", "cr only"),
            sse("", "[DONE]"),
        ];
        for piece in [1, 2, 3, 5, 1000] {
            assert_eq!(
                frames(Framing::Sse, input, piece),
                expected,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn ndjson_and_json_array_split_documents() {
        let nd = b"{\"a\":1}\n\r\n{\"b\":\"x\\n\"}\r\n{\"c\":3}";
        let expected = vec![
            Frame::Json(b"{\"a\":1}".to_vec()),
            Frame::Json(b"{\"b\":\"x\\n\"}".to_vec()),
            Frame::Json(b"{\"c\":3}".to_vec()),
        ];
        assert_eq!(frames(Framing::Ndjson, nd, 1), expected);
        let array = b"[{\"a\":1}\n,\r\n{\"b\":\"]}[\\\"\",\"n\":[1,{\"d\":2}]}\n]";
        let out = frames(Framing::JsonArray, array, 1);
        assert_eq!(
            out,
            vec![
                Frame::Json(b"{\"a\":1}".to_vec()),
                Frame::Json(b"{\"b\":\"]}[\\\"\",\"n\":[1,{\"d\":2}]}".to_vec()),
            ]
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn eventstream_reference_vectors_decode_in_any_split() {
        // Test vectors 1 and 3 of llm-wire-formats.md §3.5.
        let delta = hex(
            "000000a2000000579acad7c80d3a6d6573736167652d747970650700056576656e740b3a6576656e742d7479706507
            0011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e
            2f6a736f6e7b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224865
            6c6c6f227d2c2270223a2261626364227d9b1cfb23",
        );
        let exception = hex(
            "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074
            696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74
            797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c2070
            6c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a",
        );
        let both = [delta.clone(), exception].concat();
        for piece in [1, 13, 4096] {
            let out = frames(Framing::EventStream, &both, piece);
            assert_eq!(out.len(), 2);
            let Frame::EventStream(first) = &out[0] else {
                panic!()
            };
            assert_eq!(first.message_type, "event");
            assert_eq!(first.kind, "contentBlockDelta");
            assert_eq!(
                first.payload,
                b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hello\"},\"p\":\"abcd\"}"
            );
            let Frame::EventStream(second) = &out[1] else {
                panic!()
            };
            assert_eq!(second.message_type, "exception");
            assert_eq!(second.kind, "throttlingException");
        }
        let mut corrupt = delta;
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let mut framer = Framer::new(Framing::EventStream, 1 << 20);
        let mut out = Vec::new();
        framer.feed(&corrupt, &mut out);
        assert!(out.is_empty());
        assert!(matches!(framer.take_errors()[..], [FrameError::Corrupt(_)]));
    }
}
