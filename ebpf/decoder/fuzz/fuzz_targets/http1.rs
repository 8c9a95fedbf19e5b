//! HTTP/1.1 connections: the input is cut into chunks by its own bytes (a 0xff byte switches
//! direction), so the fuzzer explores pipelining, partial heads, chunked bodies and resync.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lumen_decoder::{ConnInfo, Connection, DecoderConfig, Direction};

fuzz_target!(|data: &[u8]| {
    let info = ConnInfo { from_start: data.first().is_some_and(|b| b & 1 == 0), ..Default::default() };
    let mut connection = Connection::new(Arc::new(DecoderConfig::default()), info);
    let mut direction = Direction::ToServer;
    let mut request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n".to_vec();
    request.truncate(data.len().min(request.len()));
    connection.data(direction, 0, &request);
    for (i, piece) in data.split(|b| *b == 0xff).enumerate() {
        connection.data(direction, i as i64, piece);
        if piece.len() % 7 == 3 {
            connection.gap(direction, i as i64, piece.len() as u64);
        }
        direction = if direction == Direction::ToServer { Direction::ToClient } else { Direction::ToServer };
        let _ = connection.take_spans();
    }
    connection.close(1 << 40);
    for span in connection.take_spans() {
        let _ = span.to_json();
    }
});
