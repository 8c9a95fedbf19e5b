//! HTTP/1.1 transport: heads (parsed by `httparse`), `Content-Length` / chunked / until-close bodies,
//! interim `1xx` responses (`100-continue`), keep-alive and pipelining (responses pair with requests in
//! order), and resynchronisation at the next request line or status line when a capture starts
//! mid-connection or loses bytes.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::exchange::Exchange;
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::span::Span;
use crate::{ConnInfo, DecoderConfig};

/// Longest head accepted; a longer one is treated as garbage (and resynchronised past).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
pub(crate) const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"PATCH ",
    b"HEAD ",
    b"OPTIONS ",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the next head, or skipping bytes until something that looks like one.
    Head {
        resync: bool,
    },
    /// A response head was parsed; the connection decides its body framing.
    AwaitFraming,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilClose,
}

enum Event {
    Request(RequestHead, Body),
    Response(ResponseHead),
    Data(Vec<u8>),
    End,
}

/// Parser for one direction of the connection.
struct Parser {
    requests: bool,
    buf: Vec<u8>,
    pos: usize,
    state: State,
}

impl Parser {
    fn new(requests: bool) -> Parser {
        Parser {
            requests,
            buf: Vec::new(),
            pos: 0,
            state: State::Head { resync: false },
        }
    }

    fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// True while between messages (no bytes of a new head buffered yet).
    fn idle(&self) -> bool {
        matches!(self.state, State::Head { .. }) && self.rest().is_empty()
    }

    /// Bytes lost in this direction: a body of known length skips ahead; anything else resyncs.
    fn lose(&mut self, len: u64) {
        self.state = match self.state {
            State::Length(remaining) if len < remaining => {
                // The buffered bytes come before the hole; they still belong to the body.
                State::Length(remaining - len)
            }
            State::UntilClose => State::UntilClose,
            _ => State::Head { resync: true },
        };
        if matches!(self.state, State::Head { .. }) {
            self.pos = self.buf.len();
        }
    }

    fn next(&mut self) -> Option<Event> {
        loop {
            match self.state {
                State::Head { resync } => {
                    if resync && !self.resync() {
                        return None;
                    }
                    // Stray line breaks between messages are allowed (RFC 9112 §2.2).
                    while self
                        .rest()
                        .first()
                        .is_some_and(|b| *b == b'\r' || *b == b'\n')
                    {
                        self.pos += 1;
                    }
                    if self.rest().is_empty() {
                        return None;
                    }
                    match self.parse_head() {
                        Ok(Some(event)) => return Some(event),
                        Ok(None) => return None,
                        Err(()) => {
                            // Not a head here: look for the next one past this byte.
                            self.pos += 1;
                            self.state = State::Head { resync: true };
                        }
                    }
                }
                State::AwaitFraming => return None,
                State::Length(0) => {
                    self.state = State::Head { resync: false };
                    return Some(Event::End);
                }
                State::Length(remaining) => {
                    let take = (remaining as usize).min(self.rest().len());
                    if take == 0 {
                        return None;
                    }
                    let data = self.rest()[..take].to_vec();
                    self.pos += take;
                    self.state = State::Length(remaining - take as u64);
                    return Some(Event::Data(data));
                }
                State::UntilClose => {
                    if self.rest().is_empty() {
                        return None;
                    }
                    let data = self.rest().to_vec();
                    self.pos = self.buf.len();
                    return Some(Event::Data(data));
                }
                State::ChunkSize => match httparse::parse_chunk_size(self.rest()) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        self.pos += used;
                        self.state = State::Trailers;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.pos += used;
                        self.state = State::ChunkData(size);
                    }
                    Ok(httparse::Status::Partial) if self.rest().len() < 1024 => return None,
                    _ => self.state = State::Head { resync: true },
                },
                State::ChunkData(0) => self.state = State::ChunkDataEnd,
                State::ChunkData(remaining) => {
                    let take = (remaining as usize).min(self.rest().len());
                    if take == 0 {
                        return None;
                    }
                    let data = self.rest()[..take].to_vec();
                    self.pos += take;
                    self.state = State::ChunkData(remaining - take as u64);
                    return Some(Event::Data(data));
                }
                State::ChunkDataEnd => {
                    let rest = self.rest();
                    if rest.len() < 2 {
                        return None;
                    }
                    if &rest[..2] != b"\r\n" {
                        self.state = State::Head { resync: true };
                        continue;
                    }
                    self.pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Trailer fields end with an empty line; their content is not needed.
                    let rest = self.rest();
                    if rest.starts_with(b"\r\n") {
                        self.pos += 2;
                    } else if let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") {
                        self.pos += end + 4;
                    } else if rest.len() > MAX_HEAD {
                        self.state = State::Head { resync: true };
                        continue;
                    } else {
                        return None;
                    }
                    self.state = State::Head { resync: false };
                    return Some(Event::End);
                }
            }
        }
    }

    /// Parses a head at `pos`: `Ok(None)` when more bytes are needed, `Err` when it is not a head.
    fn parse_head(&mut self) -> Result<Option<Event>, ()> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let rest = &self.buf[self.pos..];
        if self.requests {
            let mut request = httparse::Request::new(&mut storage);
            match request.parse(rest) {
                Ok(httparse::Status::Complete(used)) => {
                    let headers = collect_headers(request.headers);
                    let head = RequestHead {
                        method: request.method.unwrap_or_default().to_string(),
                        target: request.path.unwrap_or_default().to_string(),
                        authority: headers.get("host").map(String::from),
                        headers,
                    };
                    let body = request_body(&head.headers)?;
                    self.pos += used;
                    self.state = match body {
                        Body::None => State::Head { resync: false },
                        Body::Length(n) => State::Length(n),
                        Body::Chunked => State::ChunkSize,
                        Body::UntilClose => State::UntilClose,
                    };
                    Ok(Some(Event::Request(head, body)))
                }
                Ok(httparse::Status::Partial) if rest.len() <= MAX_HEAD => Ok(None),
                _ => Err(()),
            }
        } else {
            let mut response = httparse::Response::new(&mut storage);
            match response.parse(rest) {
                Ok(httparse::Status::Complete(used)) => {
                    let head = ResponseHead {
                        status: response.code.unwrap_or_default(),
                        headers: collect_headers(response.headers),
                    };
                    self.pos += used;
                    self.state = State::AwaitFraming;
                    Ok(Some(Event::Response(head)))
                }
                Ok(httparse::Status::Partial) if rest.len() <= MAX_HEAD => Ok(None),
                _ => Err(()),
            }
        }
    }

    /// Sets the framing of the response body whose head was just returned.
    fn set_body(&mut self, body: Body) {
        self.state = match body {
            Body::None => State::Head { resync: false },
            Body::Length(n) => State::Length(n),
            Body::Chunked => State::ChunkSize,
            Body::UntilClose => State::UntilClose,
        };
    }

    /// Skips to the next plausible head start; false when none is buffered yet.
    fn resync(&mut self) -> bool {
        let rest = &self.buf[self.pos..];
        let found = if self.requests {
            find_request_line(rest)
        } else {
            find_status_line(rest)
        };
        match found {
            Some(Ok(offset)) => {
                self.pos += offset;
                self.state = State::Head { resync: false };
                true
            }
            // A candidate whose line is not complete yet: keep it and wait.
            Some(Err(offset)) => {
                self.pos += offset;
                false
            }
            None => {
                // Keep a short tail: a head may be split across reads.
                self.pos += rest.len().saturating_sub(16);
                false
            }
        }
    }
}

/// Offset of the first request line in `buf`: `Ok` when complete, `Err` when its line is not finished.
fn find_request_line(buf: &[u8]) -> Option<Result<usize, usize>> {
    for i in 0..buf.len() {
        if !buf[i].is_ascii_uppercase() || (i > 0 && buf[i - 1].is_ascii_uppercase()) {
            continue;
        }
        let rest = &buf[i..];
        if !METHODS
            .iter()
            .any(|m| rest.starts_with(m) || m.starts_with(rest))
        {
            continue;
        }
        match memchr::memchr(b'\n', &rest[..rest.len().min(16 * 1024)]) {
            Some(end) => {
                let line = &rest[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
                    return Some(Ok(i));
                }
            }
            None if rest.len() < 16 * 1024 => return Some(Err(i)),
            None => {}
        }
    }
    None
}

fn find_status_line(buf: &[u8]) -> Option<Result<usize, usize>> {
    let finder = memchr::memmem::Finder::new(b"HTTP/1.");
    for i in finder.find_iter(buf) {
        let rest = &buf[i..];
        if rest.len() < 13 {
            return Some(Err(i));
        }
        let valid = matches!(rest[7], b'0' | b'1')
            && rest[8] == b' '
            && rest[9..12].iter().all(u8::is_ascii_digit);
        if valid {
            return Some(Ok(i));
        }
    }
    // A status line may begin in the last few bytes.
    let tail = buf.len().saturating_sub(6);
    (0..6.min(buf.len()))
        .map(|k| tail + k)
        .find(|&i| b"HTTP/1.".starts_with(&buf[i..]))
        .map(Err)
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Headers {
    Headers(
        raw.iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect(),
    )
}

fn is_chunked(headers: &Headers) -> bool {
    headers.get("transfer-encoding").is_some_and(|te| {
        te.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    })
}

fn content_length(headers: &Headers) -> Result<Option<u64>, ()> {
    match headers.get("content-length") {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| ()),
    }
}

fn request_body(headers: &Headers) -> Result<Body, ()> {
    if is_chunked(headers) {
        return Ok(Body::Chunked);
    }
    Ok(match content_length(headers)? {
        Some(0) | None => Body::None,
        Some(n) => Body::Length(n),
    })
}

fn response_body(method: Option<&str>, head: &ResponseHead) -> Body {
    if method == Some("HEAD") || head.status == 204 || head.status == 304 || head.status < 200 {
        return Body::None;
    }
    if is_chunked(&head.headers) {
        return Body::Chunked;
    }
    match content_length(&head.headers) {
        Ok(Some(0)) => Body::None,
        Ok(Some(n)) => Body::Length(n),
        _ => Body::UntilClose,
    }
}

/// An HTTP/1.1 connection: two parsers and the exchanges waiting for their responses.
pub struct H1Connection {
    config: Arc<DecoderConfig>,
    info: ConnInfo,
    requests: Parser,
    responses: Parser,
    /// Requests in order; the front is the one the next response answers.
    exchanges: VecDeque<Exchange>,
    /// Timestamp of the first byte of the head being received, per direction.
    head_start: [Option<i64>; 2],
    seq: u64,
    spans: Vec<Span>,
    /// After `101 Switching Protocols` the bytes are no longer HTTP/1.
    switched: bool,
}

impl H1Connection {
    pub fn new(config: Arc<DecoderConfig>, info: ConnInfo) -> H1Connection {
        H1Connection {
            config,
            info,
            requests: Parser::new(true),
            responses: Parser::new(false),
            exchanges: VecDeque::new(),
            head_start: [None, None],
            seq: 0,
            spans: Vec::new(),
            switched: false,
        }
    }

    pub fn take_spans(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.spans)
    }

    pub fn request_bytes(&mut self, ts: i64, data: &[u8]) {
        if self.switched {
            return;
        }
        if self.requests.idle() {
            self.head_start[0] = Some(ts);
        }
        self.requests.push(data);
        while let Some(event) = self.requests.next() {
            match event {
                Event::Request(head, body) => {
                    let start = self.head_start[0].take().unwrap_or(ts);
                    self.seq += 1;
                    let mut exchange = Exchange::new(
                        self.config.clone(),
                        &self.info,
                        "1.1",
                        start,
                        Some(head),
                        self.seq,
                    );
                    if body == Body::None {
                        exchange.request_end(ts);
                    }
                    self.exchanges.push_back(exchange);
                }
                Event::Data(data) => {
                    if let Some(exchange) = self.exchanges.back_mut() {
                        exchange.request_data(ts, &data);
                    }
                }
                Event::End => {
                    if let Some(exchange) = self.exchanges.back_mut() {
                        exchange.request_end(ts);
                    }
                }
                Event::Response(_) => {}
            }
            if self.requests.idle() {
                self.head_start[0] = None;
            } else if self.head_start[0].is_none()
                && matches!(self.requests.state, State::Head { .. })
            {
                self.head_start[0] = Some(ts);
            }
        }
    }

    pub fn response_bytes(&mut self, ts: i64, data: &[u8]) {
        if self.switched {
            return;
        }
        self.responses.push(data);
        while let Some(event) = self.responses.next() {
            match event {
                Event::Response(head) => self.on_response_head(ts, head),
                Event::Data(data) => {
                    if let Some(exchange) = self.answering() {
                        exchange.response_data(ts, &data);
                    }
                }
                Event::End => self.finish_front(ts, true),
                Event::Request(..) => {}
            }
        }
    }

    /// The exchange receiving the current response body, if the response has a request.
    fn answering(&mut self) -> Option<&mut Exchange> {
        self.exchanges.front_mut().filter(|e| e.has_response())
    }

    fn on_response_head(&mut self, ts: i64, head: ResponseHead) {
        let owner = self
            .exchanges
            .front()
            .filter(|e| !e.has_response() && e.start_ns() <= ts);
        // Only the method of the request being answered matters (HEAD responses have no body).
        let method = owner.map(|e| e.method().to_string());
        let body = response_body(method.as_deref(), &head);
        self.responses.set_body(body);
        if head.status == 101 {
            // Upgraded (WebSocket, h2c via Upgrade): the rest of the connection is not HTTP/1.
            self.switched = true;
        }
        if head.status < 200 && head.status != 101 {
            return; // 100 Continue and other interim responses precede the real one
        }
        if owner.is_none() {
            // A response to a request that was not captured: its body is skipped.
            return;
        }
        if let Some(exchange) = self.exchanges.front_mut() {
            exchange.response_head(ts, head);
        }
        if body == Body::None {
            self.finish_front(ts, true);
        }
    }

    fn finish_front(&mut self, ts: i64, complete: bool) {
        if self.exchanges.front().is_some_and(Exchange::has_response)
            && let Some(exchange) = self.exchanges.pop_front()
        {
            self.spans.push(exchange.finish(ts, complete));
        }
    }

    pub fn gap(&mut self, to_server: bool, len: u64) {
        if to_server {
            if let Some(exchange) = self.exchanges.back_mut() {
                exchange.lost(true);
            }
            self.requests.lose(len);
        } else {
            if let Some(exchange) = self.answering() {
                exchange.lost(false);
            }
            let resyncs = !matches!(self.responses.state, State::Length(r) if len < r)
                && self.responses.state != State::UntilClose;
            self.responses.lose(len);
            if resyncs {
                // The answered exchange cannot be finished by its framing any more.
                if self.exchanges.front().is_some_and(Exchange::has_response)
                    && let Some(exchange) = self.exchanges.pop_front()
                {
                    let last = exchange.start_ns();
                    self.spans.push(exchange.finish(last, false));
                }
            }
        }
    }

    pub fn close(&mut self, ts: i64) {
        if self.responses.state == State::UntilClose {
            self.finish_front(ts, true);
        }
        while let Some(exchange) = self.exchanges.pop_front() {
            self.spans.push(exchange.finish(ts, false));
        }
    }
}
