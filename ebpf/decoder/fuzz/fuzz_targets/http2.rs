//! HTTP/2 connections: a valid preface followed by fuzzed frames in both directions (HPACK, padding,
//! CONTINUATION, RST_STREAM, mid-connection attach when the first byte is odd).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lumen_decoder::{ConnInfo, Connection, DecoderConfig, Direction};

fuzz_target!(|data: &[u8]| {
    let from_start = data.first().is_some_and(|b| b & 1 == 0);
    let info = ConnInfo { from_start, ..Default::default() };
    let mut connection = Connection::new(Arc::new(DecoderConfig::default()), info);
    if from_start {
        connection.data(Direction::ToServer, 0, lumen_decoder::h2::PREFACE);
    }
    let mut direction = Direction::ToServer;
    for (i, piece) in data.split(|b| *b == 0xfe).enumerate() {
        connection.data(direction, i as i64, piece);
        direction = if direction == Direction::ToServer { Direction::ToClient } else { Direction::ToServer };
        let _ = connection.take_spans();
    }
    connection.close(1 << 40);
    let _ = connection.take_spans();
});
