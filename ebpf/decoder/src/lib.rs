//! lumen-decoder: turns the two byte streams of a captured connection into LLM spans.
//!
//! The sensor (or `lumen-sensor replay`) feeds a [`Connection`] with chunks of bytes, each with its
//! direction and a timestamp, and reports bytes it lost as gaps. The connection detects HTTP/1.1 or
//! HTTP/2, pairs requests with responses, decodes bodies (content encodings, SSE / NDJSON /
//! eventstream framings, each provider's JSON) and emits one [`Span`] per exchange in the span
//! contract of `ingest/src/schema.rs`. Nothing here panics on input; damaged input yields spans
//! flagged `truncated` with what could be decoded, never made-up numbers.
//!
//! Reading order: `connection` below → `h1` / `h2` (transports) → `exchange` (one request/response)
//! → `providers` (the LLM APIs) → `framing`, `encoding`, `content`, `prices`.

pub mod capfile;
pub mod content;
pub mod encoding;
pub mod exchange;
pub mod framing;
pub mod h1;
pub mod h2;
pub mod http;
pub mod prices;
pub mod providers;
pub mod span;

use std::sync::Arc;

use h1::METHODS;

pub use prices::PriceTable;
pub use providers::ContentPolicy;
pub use span::Span;

/// Which way bytes travel on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: requests.
    ToServer,
    /// Server to client: responses.
    ToClient,
}

/// What is known about a connection before its bytes are decoded.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    /// Identifies the connection in span ids (e.g. a hash of pid, fd and start time).
    pub key: u64,
    pub peer_address: Option<String>,
    pub peer_port: Option<u16>,
    pub local_address: Option<String>,
    /// `openssl`, `boringssl`, `plaintext`, …
    pub tls_library: Option<String>,
    /// The capture begins with the connection's first byte (false when attached to a live connection).
    pub from_start: bool,
}

/// Settings shared by all connections.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    pub policy: ContentPolicy,
    /// Decoded request bytes kept for parsing (larger bodies are flagged `truncated`).
    pub max_request_body: usize,
    /// Decoded response bytes kept (unary) or per event (streams).
    pub max_response_body: usize,
    pub prices: Arc<PriceTable>,
    /// The span's `source` column (`ebpf`, `pcap`).
    pub source: String,
}

impl Default for DecoderConfig {
    fn default() -> DecoderConfig {
        DecoderConfig {
            policy: ContentPolicy { capture: true },
            max_request_body: 8 << 20,
            max_response_body: 16 << 20,
            prices: PriceTable::embedded(),
            source: "ebpf".into(),
        }
    }
}

/// Bytes buffered while the protocol is not known yet.
const DETECT_LIMIT: usize = 64 * 1024;

enum Protocol {
    /// Not decided: chunks are held until the first client bytes (or clear server bytes) decide.
    Unknown(Vec<(Direction, i64, Vec<u8>)>, usize),
    Http1(h1::H1Connection),
    Http2(h2::H2Connection),
    /// Not HTTP (or TLS ciphertext): ignored.
    Opaque,
}

/// One captured connection being decoded.
pub struct Connection {
    config: Arc<DecoderConfig>,
    info: ConnInfo,
    protocol: Protocol,
    closed: bool,
}

impl Connection {
    pub fn new(config: Arc<DecoderConfig>, info: ConnInfo) -> Connection {
        Connection {
            config,
            info,
            protocol: Protocol::Unknown(Vec::new(), 0),
            closed: false,
        }
    }

    /// Feeds bytes seen at `ts` (Unix nanoseconds) going in `direction`.
    pub fn data(&mut self, direction: Direction, ts: i64, bytes: &[u8]) {
        if self.closed || bytes.is_empty() {
            return;
        }
        if let Protocol::Unknown(held, held_bytes) = &mut self.protocol {
            held.push((direction, ts, bytes.to_vec()));
            *held_bytes += bytes.len();
            let decided = detect(held, *held_bytes, &self.info);
            if let Some(decision) = decided {
                let next = self.make(decision);
                let Protocol::Unknown(held, _) = std::mem::replace(&mut self.protocol, next) else {
                    return;
                };
                for (direction, ts, bytes) in held {
                    self.feed(direction, ts, &bytes);
                }
            }
            return;
        }
        self.feed(direction, ts, bytes);
    }

    fn make(&self, decision: Detected) -> Protocol {
        match decision {
            Detected::Http1 => Protocol::Http1(h1::H1Connection::new(
                self.config.clone(),
                self.info.clone(),
            )),
            Detected::Http2 { preface } => Protocol::Http2(h2::H2Connection::new(
                self.config.clone(),
                self.info.clone(),
                preface,
            )),
            Detected::Opaque => Protocol::Opaque,
        }
    }

    fn feed(&mut self, direction: Direction, ts: i64, bytes: &[u8]) {
        let to_server = direction == Direction::ToServer;
        match &mut self.protocol {
            Protocol::Http1(c) if to_server => c.request_bytes(ts, bytes),
            Protocol::Http1(c) => c.response_bytes(ts, bytes),
            Protocol::Http2(c) => c.bytes(to_server, ts, bytes),
            Protocol::Unknown(..) | Protocol::Opaque => {}
        }
    }

    /// `len` bytes going in `direction` were lost by the capture.
    pub fn gap(&mut self, direction: Direction, _ts: i64, len: u64) {
        let to_server = direction == Direction::ToServer;
        match &mut self.protocol {
            Protocol::Http1(c) => c.gap(to_server, len),
            Protocol::Http2(c) => c.gap(to_server),
            // Before the protocol is known a gap only means the start is missing; resync handles it.
            Protocol::Unknown(..) | Protocol::Opaque => {}
        }
    }

    /// The connection ended at `ts`: open exchanges finish (as truncated unless their framing ended).
    pub fn close(&mut self, ts: i64) {
        if self.closed {
            return;
        }
        if let Protocol::Unknown(held, _) = &self.protocol {
            // Too little was seen to be sure; decide on what there is.
            let decision = if held.is_empty() {
                Detected::Opaque
            } else {
                detect(held, usize::MAX, &self.info).unwrap_or(Detected::Opaque)
            };
            let next = self.make(decision);
            let Protocol::Unknown(held, _) = std::mem::replace(&mut self.protocol, next) else {
                return;
            };
            for (direction, ts, bytes) in held {
                self.feed(direction, ts, &bytes);
            }
        }
        match &mut self.protocol {
            Protocol::Http1(c) => c.close(ts),
            Protocol::Http2(c) => c.close(ts),
            Protocol::Unknown(..) | Protocol::Opaque => {}
        }
        self.closed = true;
    }

    /// Spans finished so far (drained).
    pub fn take_spans(&mut self) -> Vec<Span> {
        match &mut self.protocol {
            Protocol::Http1(c) => c.take_spans(),
            Protocol::Http2(c) => c.take_spans(),
            Protocol::Unknown(..) | Protocol::Opaque => Vec::new(),
        }
    }
}

enum Detected {
    Http1,
    Http2 { preface: bool },
    Opaque,
}

/// Decides the protocol from the first bytes of each direction; `None` while undecided.
/// `held_bytes == usize::MAX` forces a decision (the connection closed).
fn detect(
    held: &[(Direction, i64, Vec<u8>)],
    held_bytes: usize,
    info: &ConnInfo,
) -> Option<Detected> {
    let first = |direction: Direction| -> Vec<u8> {
        let mut out = Vec::new();
        for (_, _, bytes) in held.iter().filter(|(d, ..)| *d == direction) {
            let room = 64 - out.len();
            out.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if out.len() >= 64 {
                break;
            }
        }
        out
    };
    let client = first(Direction::ToServer);
    let server = first(Direction::ToClient);
    let forced = held_bytes == usize::MAX;
    let mid = !info.from_start;
    if !client.is_empty() {
        if mid && client.len() < 9 && !forced {
            return None; // too short to tell an HTTP/2 frame header from anything else
        }
        if client.starts_with(h2::PREFACE) {
            return Some(Detected::Http2 { preface: true });
        }
        let partial = client.len() < h2::PREFACE.len()
            && (h2::PREFACE.starts_with(&client) || METHODS.iter().any(|m| m.starts_with(&client)));
        if partial && !forced {
            return None; // a preface or request line split across reads
        }
        if METHODS.iter().any(|m| client.starts_with(m)) {
            return Some(Detected::Http1);
        }
        if mid && h2::looks_like_frames(&client) {
            return Some(Detected::Http2 { preface: false });
        }
        // Mid-connection HTTP/1 starting inside a body: the parsers resync at the next head.
        return Some(if mid {
            Detected::Http1
        } else {
            Detected::Opaque
        });
    }
    if server.starts_with(b"HTTP/1.") {
        return Some(Detected::Http1);
    }
    if mid && !server.is_empty() {
        if server.len() < 9 && !forced {
            return None;
        }
        if h2::looks_like_frames(&server) {
            // Wait for the client side to confirm, unless there is nothing more to wait for.
            return (forced || held_bytes >= DETECT_LIMIT)
                .then_some(Detected::Http2 { preface: false });
        }
        return Some(Detected::Http1);
    }
    (forced || held_bytes >= DETECT_LIMIT).then_some(Detected::Opaque)
}
