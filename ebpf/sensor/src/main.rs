//! `lumen-sensor`: the node agent. `run` captures the LLM calls of every process on the node with eBPF
//! and ships them to a Lumen server; `check` says whether this node can; `replay` decodes plaintext HTTP
//! from a packet capture into LLM spans (printed as NDJSON, or pushed to a Lumen server) — how users check
//! the decoder against their own traffic, and how the tests check it against captures of real SDKs.

mod bpf_events;
mod export;
mod live;
mod metrics;
mod pcap;
mod preflight;
mod probes;
mod procs;
mod redaction;
mod tracker;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lumen_decoder::{ContentPolicy, DecoderConfig, PriceTable};

#[derive(Parser)]
#[command(name = "lumen-sensor", version, about = "Lumen's node sensor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What leaves the node of a call's prompts and completions.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum CaptureMode {
    /// Prompts, completions and tool calls as captured.
    Full,
    /// Content with sensitive values (e-mail, cards, keys, ...) replaced by typed placeholders.
    Redacted,
    /// No content at all: model, tokens, timings, status only.
    Metadata,
}

#[derive(Subcommand)]
// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Capture the LLM calls of this node's processes with eBPF and push them to a Lumen server.
    Run {
        /// The Lumen server (its /v1/spans endpoint receives the spans).
        #[arg(long, env = "LUMEN_ENDPOINT", default_value = "http://127.0.0.1:4318")]
        endpoint: String,
        /// Bearer token for the server.
        #[arg(long, env = "LUMEN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// What of prompts and completions leaves the node.
        #[arg(long, value_enum, env = "LUMEN_CAPTURE", default_value = "redacted")]
        capture: CaptureMode,
        /// Redaction rules for `--capture redacted` (TOML: kinds, custom patterns, JSON key lists; see
        /// redact/README.md). Default: every built-in kind and the default key drop-list.
        #[arg(long, env = "LUMEN_REDACT_CONFIG")]
        redact_config: Option<PathBuf>,
        /// Capture only these processes (pid); repeatable.
        #[arg(long = "pid", value_name = "PID")]
        include_pids: Vec<u32>,
        /// Never capture these processes (pid); repeatable.
        #[arg(long = "exclude-pid", value_name = "PID")]
        exclude_pids: Vec<u32>,
        /// Capture only processes with this name or executable file name; repeatable.
        #[arg(long = "process", value_name = "NAME")]
        include_names: Vec<String>,
        /// Never capture processes with this name or executable file name; repeatable.
        #[arg(long = "exclude-process", value_name = "NAME")]
        exclude_names: Vec<String>,
        /// Capture only processes whose cgroup path contains this (or whose container id starts with it).
        #[arg(long = "cgroup", value_name = "PATTERN")]
        include_cgroups: Vec<String>,
        /// Never capture processes whose cgroup path contains this (or whose container id starts with it).
        #[arg(long = "exclude-cgroup", value_name = "PATTERN")]
        exclude_cgroups: Vec<String>,
        /// Also decode connections this node's processes accept (the serving side). Off by default: the
        /// client side of a call is what is captured, so a call between two processes on the node is one span.
        #[arg(long)]
        capture_server: bool,
        /// Flush a batch to the server at this many spans.
        #[arg(long, default_value_t = 500)]
        batch_spans: usize,
        /// Flush a batch to the server when its oldest span is this many milliseconds old.
        #[arg(long, default_value_t = 1000)]
        batch_age_ms: u64,
        /// Where batches wait while the server is unreachable.
        #[arg(
            long,
            env = "LUMEN_SPOOL_DIR",
            default_value = "/var/lib/lumen-sensor/spool"
        )]
        spool_dir: PathBuf,
        /// Largest size of the spool in bytes; spans beyond it are dropped and counted.
        #[arg(long, default_value_t = 256 << 20)]
        spool_max_bytes: u64,
        /// Ring buffer size in bytes (a power of two).
        #[arg(long, default_value_t = 16 << 20)]
        ring_buffer_bytes: u32,
        /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464).
        #[arg(long, env = "LUMEN_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// A price file (LiteLLM's format) overriding the built-in prices.
        #[arg(long)]
        prices: Option<PathBuf>,
        /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Check that this node can run the sensor (privileges, BTF, uprobes, tracepoints) and say what is missing.
    Check,
    /// Decode LLM calls from a pcap/pcapng file (plaintext HTTP/1.1 and HTTP/2).
    Replay {
        /// The capture file (`-` for standard input).
        file: PathBuf,
        /// Push spans to this Lumen server (e.g. http://127.0.0.1:4318) instead of printing them.
        #[arg(long, env = "LUMEN_ENDPOINT")]
        endpoint: Option<String>,
        /// Bearer token for the server.
        #[arg(long, env = "LUMEN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Leave prompts and completions out of the spans.
        #[arg(long)]
        metadata_only: bool,
        /// A price file (LiteLLM's format) overriding the built-in prices.
        #[arg(long)]
        prices: Option<PathBuf>,
        /// Also print exchanges that are not LLM calls (plain HTTP spans).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        all: bool,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Check => {
            let checks = preflight::run();
            for c in &checks {
                println!(
                    "{} {}: {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.what,
                    c.detail
                );
            }
            if checks.iter().all(|c| c.ok) {
                Ok(())
            } else {
                anyhow::bail!("this node cannot run the sensor")
            }
        }
        Command::Run {
            endpoint,
            token,
            capture,
            redact_config,
            include_pids,
            exclude_pids,
            include_names,
            exclude_names,
            include_cgroups,
            exclude_cgroups,
            capture_server,
            batch_spans,
            batch_age_ms,
            spool_dir,
            spool_max_bytes,
            ring_buffer_bytes,
            metrics_listen,
            prices,
            duration_secs,
        } => {
            if !ring_buffer_bytes.is_power_of_two() || ring_buffer_bytes < 4096 {
                anyhow::bail!(
                    "--ring-buffer-bytes must be a power of two of at least 4096, not {ring_buffer_bytes}"
                );
            }
            let prices = match prices {
                Some(path) => Arc::new(PriceTable::with_overrides(&path)?),
                None => PriceTable::embedded(),
            };
            let decoder = DecoderConfig {
                policy: ContentPolicy {
                    capture: capture != CaptureMode::Metadata,
                },
                prices,
                source: "ebpf".into(),
                ..DecoderConfig::default()
            };
            let redact: Option<live::Redact> = match capture {
                CaptureMode::Redacted => {
                    let redactor = redaction::load(redact_config.as_deref())?;
                    Some(Box::new(move |span: &mut lumen_decoder::Span| {
                        redaction::apply(&redactor, span)
                    }))
                }
                CaptureMode::Full | CaptureMode::Metadata => None,
            };
            live::run(live::RunOptions {
                export: export::ExportConfig {
                    endpoint,
                    token,
                    batch_spans: batch_spans.max(1),
                    batch_age: std::time::Duration::from_millis(batch_age_ms),
                    spool_dir,
                    spool_max_bytes,
                },
                decoder,
                redact,
                filters: procs::Filters {
                    include_pids,
                    exclude_pids,
                    include_names,
                    exclude_names,
                    include_cgroups,
                    exclude_cgroups,
                },
                capture_server,
                ring_buffer_bytes,
                metrics_listen,
                duration: duration_secs.map(std::time::Duration::from_secs),
            })
        }
        Command::Replay {
            file,
            endpoint,
            token,
            metadata_only,
            prices,
            all,
        } => {
            let prices = match prices {
                Some(path) => Arc::new(PriceTable::with_overrides(&path)?),
                None => PriceTable::embedded(),
            };
            let config = Arc::new(DecoderConfig {
                policy: ContentPolicy {
                    capture: !metadata_only,
                },
                prices,
                source: "pcap".into(),
                ..DecoderConfig::default()
            });
            let mut replayer = pcap::Replayer::new(config);
            let name = file.display().to_string();
            let packets = if name == "-" {
                replayer.read(&name, std::io::stdin())?
            } else {
                let input =
                    std::fs::File::open(&file).with_context(|| format!("cannot open {name}"))?;
                replayer.read(&name, std::io::BufReader::new(input))?
            };
            let spans: Vec<_> = replayer
                .finish_all()
                .into_iter()
                .filter(|s| all || s.is_llm())
                .collect();
            let llm = spans.iter().filter(|s| s.is_llm()).count();
            tracing::info!(
                packets,
                spans = spans.len(),
                llm_calls = llm,
                "decoded {name}"
            );
            match endpoint {
                Some(endpoint) => export::push(&endpoint, token.as_deref(), &spans)?,
                None => {
                    let mut out = std::io::stdout().lock();
                    for span in &spans {
                        writeln!(out, "{}", span.to_json())?;
                    }
                }
            }
            Ok(())
        }
    }
}
