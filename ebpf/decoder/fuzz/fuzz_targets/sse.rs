//! The SSE, NDJSON and JSON-array framers on arbitrary bytes in arbitrary pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumen_decoder::framing::{Framer, Framing};

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Sse, Framing::Ndjson, Framing::JsonArray] {
        let mut framer = Framer::new(framing, 4096);
        let mut out = Vec::new();
        let step = data.first().map_or(1, |b| usize::from(*b % 17) + 1);
        for piece in data.chunks(step) {
            framer.feed(piece, &mut out);
        }
        framer.finish(&mut out);
        let _ = framer.take_errors();
    }
});
