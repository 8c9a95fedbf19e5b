//! Single-thread redaction throughput: the labelled corpus (dense: ~2.4 values per 600-byte
//! document), number-heavy clean prose, plain prose, and the corpus's JSON documents through
//! `redact_json_str`.
//!
//! `cargo run --release --example throughput --features corpus [-- SAMPLES SECONDS]`

use std::time::{Duration, Instant};

use lumen_redact::corpus::{self, Format};
use lumen_redact::{RedactConfig, Redactor};

fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let min_time = Duration::from_secs_f64(secs);
    let redactor = match Redactor::new(&RedactConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("config: {e}");
            std::process::exit(1);
        }
    };
    let corpus = corpus::generate(42, samples);
    let dense: Vec<String> = corpus.iter().map(|s| s.text.clone()).collect();
    let total: usize = dense.iter().map(String::len).sum();
    let clean = corpus::documents(&corpus::clean_text(42, total), 2000);
    let plain = corpus::documents(&corpus::plain_prose(42, total), 2000);
    for (name, texts) in [
        ("labelled corpus (dense)", &dense),
        ("clean prose with numbers", &clean),
        ("plain prose", &plain),
    ] {
        let t = corpus::measure_throughput(&redactor, texts, min_time);
        let avg = texts.iter().map(String::len).sum::<usize>() / texts.len().max(1);
        println!(
            "{name:<26} {:>8.1} MB/s  ({} docs, avg {avg} B, {} replacements/pass)",
            t.mb_per_s,
            texts.len(),
            t.findings_per_pass
        );
    }
    // JSON documents through the JSON path.
    let json: Vec<&str> = corpus
        .iter()
        .filter(|s| s.format == Format::Json)
        .map(|s| s.text.as_str())
        .collect();
    let pass: usize = json.iter().map(|s| s.len()).sum();
    let start = Instant::now();
    let mut bytes = 0usize;
    while bytes == 0 || start.elapsed() < min_time {
        for j in &json {
            std::hint::black_box(redactor.redact_json_str(j));
        }
        bytes += pass;
    }
    println!(
        "{:<26} {:>8.1} MB/s  ({} docs, redact_json_str)",
        "corpus JSON documents",
        bytes as f64 / 1e6 / start.elapsed().as_secs_f64(),
        json.len()
    );
}
