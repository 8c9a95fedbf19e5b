//! Properties over the fixtures and over hostile input:
//! - splitting a capture's chunks at arbitrary points (down to one byte per chunk) yields the same
//!   spans — chunk boundaries carry no meaning, compressed streams included;
//! - random bytes and mutated fixtures (flipped bytes, cut ranges, lost bytes reported as gaps)
//!   never panic and never produce more spans than exchanges that could exist.

mod common;

use lumen_decoder::capfile::Record;
use lumen_decoder::{Direction, Span};
use proptest::prelude::*;

/// All fixture captures: (case name, capture path).
fn all_captures() -> Vec<(String, String)> {
    common::cases()
        .into_iter()
        .flat_map(|(name, captures, _)| captures.into_iter().map(move |c| (name.clone(), c)))
        .collect()
}

/// Splits every data record into pieces at the given cut sizes (cycled); each piece keeps the
/// record's timestamp, as a sensor reading a buffer in several syscalls would report it.
fn split(records: &[Record], sizes: &[usize]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut k = 0;
    for record in records {
        match record {
            Record::Data(direction, ts, bytes) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = sizes[k % sizes.len()].clamp(1, rest.len());
                    k += 1;
                    out.push(Record::Data(*direction, *ts, rest[..n].to_vec()));
                    rest = &rest[n..];
                }
            }
            gap => out.push(gap.clone()),
        }
    }
    out
}

fn comparable(spans: &[Span]) -> Vec<String> {
    spans.iter().map(Span::to_json).collect()
}

#[test]
fn one_byte_chunks_give_the_same_spans_for_every_fixture() {
    for (name, path) in all_captures() {
        let capture = common::load(&path);
        let whole = common::decode(&capture, &name);
        let info = common::conn_info(&capture, &name);
        let bytewise = common::decode_records(&split(&capture.records, &[1]), info);
        assert_eq!(comparable(&whole), comparable(&bytewise), "{path}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_splits_give_the_same_spans(sizes in prop::collection::vec(1usize..200, 1..16)) {
        for (name, path) in all_captures() {
            let capture = common::load(&path);
            let whole = common::decode(&capture, &name);
            let info = common::conn_info(&capture, &name);
            let pieces = common::decode_records(&split(&capture.records, &sizes), info);
            prop_assert_eq!(comparable(&whole), comparable(&pieces), "{}", path);
        }
    }

}

proptest! {
    // Cheap cases: many of them.
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..512)), 0..32),
        from_start in any::<bool>(),
    ) {
        let info = lumen_decoder::ConnInfo { from_start, ..Default::default() };
        let records: Vec<Record> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, (up, bytes))| {
                let direction = if up { Direction::ToServer } else { Direction::ToClient };
                Record::Data(direction, i as i64, bytes)
            })
            .collect();
        let count = records.len();
        let spans = common::decode_records(&records, info);
        prop_assert!(spans.len() <= count + 1);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..12),
    ) {
        let captures = all_captures();
        let (name, path) = &captures[pick.index(captures.len())];
        let capture = common::load(path);
        let mut records = capture.records.clone();
        for (which, at, kind, byte) in mutations {
            if records.is_empty() {
                break;
            }
            let i = which.index(records.len());
            let Record::Data(direction, ts, bytes) = &mut records[i] else { continue };
            if bytes.is_empty() {
                continue;
            }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] ^= byte | 1,                       // flip bits
                1 => { bytes.truncate(at); }                        // cut the tail
                2 => { bytes.insert(at, byte); }                    // insert a byte
                _ => {                                              // lose the tail, reported as a gap
                    let lost = (bytes.len() - at) as u64;
                    bytes.truncate(at);
                    let gap = Record::Gap(*direction, *ts, lost);
                    records.insert(i + 1, gap);
                }
            }
        }
        let info = common::conn_info(&capture, name);
        let spans = common::decode_records(&records, info);
        for span in &spans {
            prop_assert!(span.input_tokens.is_none_or(|t| t >= 0));
            prop_assert!(!span.to_json().is_empty());
        }
    }
}

/// A compressed body that inflates far beyond the cap is cut at the cap and flagged, not buffered.
#[test]
fn decompression_bombs_stop_at_the_cap() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"{\"choices\":[{\"message\":{\"content\":\"")
        .unwrap();
    let zeros = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap(); // 64 MiB of text
    }
    let body = gz.finish().unwrap();
    let request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n{\"model\":\"gpt-4o\",\"messages\":[],\"n\":1,\"x\":1}";
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let records = vec![
        Record::Data(Direction::ToServer, 1, request.to_vec()),
        Record::Data(Direction::ToClient, 2, [head.as_bytes(), &body].concat()),
    ];
    let spans = common::decode_records(
        &records,
        lumen_decoder::ConnInfo {
            from_start: true,
            ..Default::default()
        },
    );
    assert_eq!(spans.len(), 1);
    assert!(
        spans[0].has_flag("truncated"),
        "{:?}",
        spans[0].capture_flags
    );
    assert_eq!(spans[0].response_bytes, Some(body.len() as u64));
}
