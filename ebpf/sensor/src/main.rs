//! `lumen-sensor`: the node agent. `replay` decodes plaintext HTTP from a packet capture into LLM spans
//! (printed as NDJSON, or pushed to a Lumen server) — how users check the decoder against their own
//! traffic, and how the tests check it against captures of real SDKs.

mod export;
mod pcap;

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

#[derive(Subcommand)]
enum Command {
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
