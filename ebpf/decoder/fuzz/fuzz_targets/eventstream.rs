//! The AWS eventstream framer (prelude and message CRCs, header parsing) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumen_decoder::framing::{Framer, Framing};

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::new(Framing::EventStream, 1 << 20);
    let mut out = Vec::new();
    let step = data.first().map_or(1, |b| usize::from(*b % 31) + 1);
    for piece in data.chunks(step) {
        framer.feed(piece, &mut out);
    }
    framer.finish(&mut out);
});
