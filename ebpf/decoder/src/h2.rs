//! HTTP/2 transport (h2 inside TLS, and h2c): the client preface, frames, HPACK with one dynamic table
//! per direction (`loona-hpack`), many concurrent streams paired by stream id, END_STREAM and
//! RST_STREAM. When the capture starts mid-connection the dynamic table is unknown: header blocks that
//! fail to decode leave their streams head-less, and those are decoded from their DATA frames alone
//! and flagged `mid_stream_attach`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::exchange::Exchange;
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::span::Span;
use crate::{ConnInfo, DecoderConfig};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
/// The largest frame HTTP/2 allows (2^24 - 1) bounds what one direction buffers.
const MAX_FRAME: usize = (1 << 24) - 1;
/// A header block larger than this (across CONTINUATION frames) is dropped.
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// Streams tracked at once; beyond this the oldest is finished as truncated.
const MAX_STREAMS: usize = 1024;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// True when `buf` starts with what parses as one or two plausible HTTP/2 frame headers: how a
/// connection captured mid-way is recognised without its preface.
pub fn looks_like_frames(buf: &[u8]) -> bool {
    let mut pos = 0;
    let mut frames = 0;
    while pos + FRAME_HEADER <= buf.len() && frames < 2 {
        let len = u32::from_be_bytes([0, buf[pos], buf[pos + 1], buf[pos + 2]]) as usize;
        let kind = buf[pos + 3];
        let stream = u32::from_be_bytes([buf[pos + 5], buf[pos + 6], buf[pos + 7], buf[pos + 8]]);
        let plausible = kind <= 0x9
            && len <= 1 << 20
            && stream & 0x8000_0000 == 0
            && match kind {
                DATA | HEADERS | RST_STREAM | CONTINUATION => stream != 0,
                0x4 | 0x6 | 0x7 => stream == 0, // SETTINGS, PING, GOAWAY
                _ => true,
            };
        if !plausible {
            return false;
        }
        frames += 1;
        pos += FRAME_HEADER + len;
    }
    frames > 0
}

struct Direction {
    buf: Vec<u8>,
    pos: usize,
    awaiting_preface: bool,
    hpack: loona_hpack::Decoder<'static>,
    /// The dynamic table is not known (mid-connection attach or a decode error).
    hpack_broken: bool,
    /// Bytes were lost: frame boundaries are unknown, the direction is not parsed any more.
    desynced: bool,
    /// A header block in progress: stream id, fragments, END_STREAM of its HEADERS frame, and
    /// whether it is a PUSH_PROMISE (decoded only to keep the table in step).
    block: Option<(u32, Vec<u8>, bool, bool)>,
}

impl Direction {
    fn new(awaiting_preface: bool) -> Direction {
        Direction {
            buf: Vec::new(),
            pos: 0,
            awaiting_preface,
            hpack: loona_hpack::Decoder::new(),
            hpack_broken: false,
            desynced: false,
            block: None,
        }
    }

    /// Next complete frame: (type, flags, stream id, payload).
    fn next_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let rest = &self.buf[self.pos..];
        if self.awaiting_preface {
            if rest.len() < PREFACE.len() {
                return None;
            }
            if rest.starts_with(PREFACE) {
                self.pos += PREFACE.len();
            }
            self.awaiting_preface = false;
            return self.next_frame();
        }
        if rest.len() < FRAME_HEADER {
            return None;
        }
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        if len > MAX_FRAME {
            self.desynced = true;
            return None;
        }
        if rest.len() < FRAME_HEADER + len {
            return None;
        }
        let kind = rest[3];
        let flags = rest[4];
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        let payload = rest[FRAME_HEADER..FRAME_HEADER + len].to_vec();
        self.pos += FRAME_HEADER + len;
        Some((kind, flags, stream, payload))
    }

    fn push(&mut self, data: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Decodes a complete header block; `None` when the table state is unknown or the block is bad.
    fn decode_block(&mut self, block: &[u8]) -> Option<Vec<(String, String)>> {
        if self.hpack_broken {
            return None;
        }
        let mut fields = Vec::new();
        let result = self.hpack.decode_with_cb(block, |name, value| {
            fields.push((
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            ));
        });
        match result {
            Ok(()) => Some(fields),
            Err(_) => {
                // From here on this direction's table may differ from the encoder's.
                self.hpack_broken = true;
                None
            }
        }
    }
}

/// Strips padding (and the priority fields of HEADERS) from a frame payload.
fn unpad(flags: u8, kind: u8, payload: &[u8]) -> Option<&[u8]> {
    let mut body = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        pad = *body.first()? as usize;
        body = &body[1..];
    }
    if kind == HEADERS && flags & PRIORITY != 0 {
        body = body.get(5..)?;
    }
    if kind == PUSH_PROMISE {
        body = body.get(4..)?;
    }
    body.get(..body.len().checked_sub(pad)?)
}

struct Stream {
    exchange: Exchange,
}

pub struct H2Connection {
    config: Arc<DecoderConfig>,
    info: ConnInfo,
    client: Direction,
    server: Direction,
    streams: BTreeMap<u32, Stream>,
    seq: u64,
    spans: Vec<Span>,
}

impl H2Connection {
    /// `from_start` is true when the connection's first bytes (the preface) are in the capture.
    pub fn new(config: Arc<DecoderConfig>, info: ConnInfo, from_start: bool) -> H2Connection {
        let mut connection = H2Connection {
            config,
            info,
            client: Direction::new(from_start),
            server: Direction::new(false),
            streams: BTreeMap::new(),
            seq: 0,
            spans: Vec::new(),
        };
        if !from_start {
            connection.client.hpack_broken = true;
            connection.server.hpack_broken = true;
        }
        connection
    }

    pub fn take_spans(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.spans)
    }

    pub fn bytes(&mut self, to_server: bool, ts: i64, data: &[u8]) {
        let direction = if to_server {
            &mut self.client
        } else {
            &mut self.server
        };
        if direction.desynced {
            return;
        }
        direction.push(data);
        loop {
            let direction = if to_server {
                &mut self.client
            } else {
                &mut self.server
            };
            let Some((kind, flags, stream, payload)) = direction.next_frame() else {
                break;
            };
            self.frame(to_server, ts, kind, flags, stream, &payload);
        }
    }

    fn frame(
        &mut self,
        to_server: bool,
        ts: i64,
        kind: u8,
        flags: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        match kind {
            DATA => {
                let Some(data) = unpad(flags, kind, payload) else {
                    return;
                };
                let stream = self.stream(stream_id, ts);
                if to_server {
                    stream.exchange.request_data(ts, data);
                    if flags & END_STREAM != 0 {
                        stream.exchange.request_end(ts);
                    }
                } else {
                    stream.exchange.response_data(ts, data);
                    if flags & END_STREAM != 0 {
                        self.end_stream(stream_id, ts, true);
                    }
                }
            }
            HEADERS | PUSH_PROMISE => {
                let Some(fragment) = unpad(flags, kind, payload) else {
                    return;
                };
                let direction = if to_server {
                    &mut self.client
                } else {
                    &mut self.server
                };
                direction.block = Some((
                    stream_id,
                    fragment.to_vec(),
                    flags & END_STREAM != 0,
                    kind == PUSH_PROMISE,
                ));
                if flags & END_HEADERS != 0 {
                    self.header_block_done(to_server, ts);
                }
            }
            CONTINUATION => {
                let direction = if to_server {
                    &mut self.client
                } else {
                    &mut self.server
                };
                let Some((_, fragments, ..)) = &mut direction.block else {
                    return;
                };
                if fragments.len() + payload.len() > MAX_HEADER_BLOCK {
                    direction.block = None;
                    direction.hpack_broken = true;
                    return;
                }
                fragments.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    self.header_block_done(to_server, ts);
                }
            }
            RST_STREAM => {
                if let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.exchange.lost(true);
                    stream.exchange.lost(false);
                }
                self.end_stream(stream_id, ts, false);
            }
            _ => {} // SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY: nothing to decode
        }
    }

    fn header_block_done(&mut self, to_server: bool, ts: i64) {
        let direction = if to_server {
            &mut self.client
        } else {
            &mut self.server
        };
        let Some((stream_id, block, end_stream, push)) = direction.block.take() else {
            return;
        };
        let fields = direction.decode_block(&block);
        if push {
            return;
        }
        if to_server {
            let known = self.streams.contains_key(&stream_id);
            if !known {
                let head = fields.map(request_head);
                self.seq += 1;
                let exchange =
                    Exchange::new(self.config.clone(), &self.info, "2", ts, head, self.seq);
                self.insert(stream_id, exchange, ts);
            }
            // Known streams: trailers; nothing in them matters.
            if end_stream && let Some(stream) = self.streams.get_mut(&stream_id) {
                stream.exchange.request_end(ts);
            }
        } else {
            let stream = self.stream(stream_id, ts);
            if let Some(fields) = fields {
                let status = fields
                    .iter()
                    .find(|(n, _)| n == ":status")
                    .and_then(|(_, v)| v.parse::<u16>().ok());
                if let Some(status) = status.filter(|s| *s >= 200)
                    && !stream.exchange.has_response()
                {
                    let headers = Headers(
                        fields
                            .into_iter()
                            .filter(|(n, _)| !n.starts_with(':'))
                            .collect(),
                    );
                    stream
                        .exchange
                        .response_head(ts, ResponseHead { status, headers });
                }
            }
            if end_stream {
                self.end_stream(stream_id, ts, true);
            }
        }
    }

    /// The stream with this id, created head-less when its HEADERS were not seen.
    fn stream(&mut self, stream_id: u32, ts: i64) -> &mut Stream {
        if !self.streams.contains_key(&stream_id) {
            self.seq += 1;
            let exchange = Exchange::new(self.config.clone(), &self.info, "2", ts, None, self.seq);
            self.insert(stream_id, exchange, ts);
        }
        // Inserted just above when missing.
        self.streams.get_mut(&stream_id).expect("stream present")
    }

    fn insert(&mut self, stream_id: u32, exchange: Exchange, ts: i64) {
        if self.streams.len() >= MAX_STREAMS
            && let Some((&oldest, _)) = self.streams.iter().next()
        {
            self.end_stream(oldest, ts, false);
        }
        self.streams.insert(stream_id, Stream { exchange });
    }

    fn end_stream(&mut self, stream_id: u32, ts: i64, complete: bool) {
        if let Some(stream) = self.streams.remove(&stream_id) {
            self.spans.push(stream.exchange.finish(ts, complete));
        }
    }

    pub fn gap(&mut self, to_server: bool) {
        let direction = if to_server {
            &mut self.client
        } else {
            &mut self.server
        };
        // Frame boundaries are lost with the bytes; every open stream is missing something.
        direction.desynced = true;
        direction.buf.clear();
        direction.pos = 0;
        for stream in self.streams.values_mut() {
            stream.exchange.lost(to_server);
        }
    }

    pub fn close(&mut self, ts: i64) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.end_stream(id, ts, false);
        }
    }
}

fn request_head(fields: Vec<(String, String)>) -> RequestHead {
    let mut head = RequestHead::default();
    let mut headers = Headers::default();
    for (name, value) in fields {
        match name.as_str() {
            ":method" => head.method = value,
            ":path" => head.target = value,
            ":authority" => head.authority = Some(value),
            ":scheme" | ":protocol" => {}
            _ => headers.0.push((name, value)),
        }
    }
    if head.authority.is_none() {
        head.authority = headers.get("host").map(String::from);
    }
    head.headers = headers;
    head
}
