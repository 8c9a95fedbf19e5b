//! `lumen-bench profile`: where the time goes, from a sampling profiler rather than by difference between
//! runs. Runs the release server under `perf record` (cpu-clock samples of every thread, flat self time)
//! while it ingests the benchmark's data sets (metadata only, with content) and flushes them, and while it
//! answers the query suite; then attributes the samples to the stages of the data path and writes the
//! tables for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A stage of the data path and the symbols (substrings, first match wins) whose samples count for it.
const STAGES: &[(&str, &[&str])] = &[
    (
        "call index (correlate)",
        &["lumen_ingest::correlate", "CallIndex"],
    ),
    (
        "capture policy + redaction",
        &[
            "lumen_ingest::policy",
            "lumen_redact",
            "regex",
            "aho_corasick",
        ],
    ),
    (
        "parse JSON → Arrow",
        &["lumen_ingest::parse", "serde_json", "lumen_ingest::schema"],
    ),
    (
        "WAL (Arrow IPC encode, CRC, write)",
        &["lumen_ingest::wal", "arrow_ipc", "crc32c"],
    ),
    ("hot buffer + dedup", &["lumen_ingest::buffer"]),
    (
        "hash maps and B-trees (call index keys, dedup ids)",
        &["hashbrown", "btree", "core::hash", "sip::Hasher"],
    ),
    ("Parquet encode / decode", &["parquet::"]),
    ("zstd", &["zstd", "ZSTD_", "HUF_", "FSE_"]),
    ("DataFusion", &["datafusion"]),
    ("Arrow compute", &["arrow_"]),
    (
        "HTTP (hyper, axum) + async runtime",
        &["hyper", "axum", "tokio", "h2::", "http_body", "mio"],
    ),
    (
        "memcpy / memcmp / memset",
        &["memcpy", "memmove", "memset", "memcmp"],
    ),
    (
        "allocator",
        &["malloc", "free", "realloc", "_int_", "sdallocx", "cfree"],
    ),
];

/// Which stage a sampled symbol belongs to.
fn stage_of(symbol: &str, kernel: bool) -> &'static str {
    if kernel {
        return "kernel (syscalls: network, fsync, page faults)";
    }
    STAGES
        .iter()
        .find(|(_, needles)| needles.iter().any(|n| symbol.contains(n)))
        .map_or("other", |(name, _)| name)
}

/// Starts `perf record` on a process; it ends by itself when the process exits.
pub fn record(pid: u32, out: &Path) -> anyhow::Result<Child> {
    let child = Command::new("perf")
        .args(["record", "-q", "-F", "499", "-p", &pid.to_string(), "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting perf (Debian package linux-perf)")?;
    Ok(child)
}

/// Stops a `perf record` of a process that keeps running (a SIGINT makes it write its file).
pub fn stop(mut perf: Child) -> anyhow::Result<()> {
    Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status()?;
    perf.wait()?;
    Ok(())
}

/// Self-time share per symbol from a perf data file: (percent, kernel?, symbol).
fn symbols(data: &Path) -> anyhow::Result<Vec<(f64, bool, String)>> {
    let output = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--sort",
            "symbol",
            "--stdio",
            "-q",
            "--percent-limit",
            "0.05",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .context("running perf report")?;
    if !output.status.success() {
        bail!("perf report failed on {}", data.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((pct, rest)) = line.split_once('%') else {
            continue;
        };
        let Ok(pct) = pct.trim().parse::<f64>() else {
            continue;
        };
        let rest = rest.trim();
        let kernel = rest.starts_with("[k]");
        // perf pads the column and may add empty columns ("-") after it.
        let symbol = rest
            .trim_start_matches("[k]")
            .trim_start_matches("[.]")
            .trim()
            .trim_end_matches(|c: char| c == '-' || c.is_whitespace())
            .to_string();
        out.push((pct, kernel, symbol));
    }
    Ok(out)
}

/// One phase's table: the share of samples per stage, and the hottest functions.
pub fn report(title: &str, data: &Path) -> anyhow::Result<String> {
    let syms = symbols(data)?;
    let mut stages: BTreeMap<&str, f64> = BTreeMap::new();
    for (pct, kernel, sym) in &syms {
        *stages.entry(stage_of(sym, *kernel)).or_default() += pct;
    }
    let mut stages: Vec<(&str, f64)> = stages.into_iter().collect();
    stages.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = format!("#### {title}\n\n| stage | share of CPU samples |\n|---|---|\n");
    for (stage, pct) in &stages {
        out.push_str(&format!("| {stage} | {pct:.1} % |\n"));
    }
    out.push_str("\nHottest functions (self time):\n\n| % | function |\n|---|---|\n");
    for (pct, kernel, sym) in syms.iter().take(12) {
        let mut name: String = sym.chars().take(110).collect();
        if sym.chars().count() > 110 {
            name.push('…');
        }
        let name = name.replace('|', "\\|");
        out.push_str(&format!(
            "| {pct:.1} | `{name}`{} |\n",
            if *kernel { " (kernel)" } else { "" }
        ));
    }
    out.push('\n');
    Ok(out)
}

/// Where `perf record` writes the samples of one phase.
pub fn data_path(work: &Path, phase: &str) -> PathBuf {
    work.join(format!("perf-{phase}.data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_land_in_their_stage() {
        assert_eq!(
            stage_of("lumen_ingest::parse::row_cells", false),
            "parse JSON → Arrow"
        );
        assert_eq!(
            stage_of("parquet::column::writer::GenericColumnWriter::write", false),
            "Parquet encode / decode"
        );
        assert_eq!(stage_of("ZSTD_compressBlock_doubleFast", false), "zstd");
        assert_eq!(
            stage_of("do_syscall_64", true),
            "kernel (syscalls: network, fsync, page faults)"
        );
        assert_eq!(stage_of("something_else", false), "other");
    }
}
