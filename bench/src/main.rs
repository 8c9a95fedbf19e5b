//! `lumen-bench`: generates realistic span data and measures Lumen next to DuckDB in the same run —
//! ingest throughput, bytes per span, a suite of user queries (over HTTP and in process, cold and hot)
//! and freshness — then writes the tables for BENCHMARKS.md.

mod profile;

use lumen_datagen as datagen;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lumen-bench", about = "Benchmarks of Lumen next to DuckDB")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write generated spans as NDJSON.
    Gen {
        #[arg(long, default_value_t = 1_000_000)]
        spans: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Include prompts and completions.
        #[arg(long)]
        content: bool,
        #[arg(long)]
        out: PathBuf,
        /// When the first span starts: Unix seconds, or `-24h`-style relative to now so that the data
        /// ends about now. [default: 2026-11-28T08:00:00Z, fixed, so the benchmark data never changes]
        #[arg(long, allow_hyphen_values = true)]
        start: Option<String>,
        /// Hours the spans spread over.
        #[arg(long, default_value_t = HOURS)]
        hours: i64,
    },
    /// Run every measurement and print the tables.
    Run(RunArgs),
    /// Ingest only, both data sets, `--runs` times each: the throughput of one build, or of two side by
    /// side (`--baseline`, runs alternate between the two) to show what a change moved.
    Ingest {
        #[command(flatten)]
        args: RunArgs,
        /// An earlier lumen binary to measure in the same run.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// The query suite at scale (10 M spans): the data set with content is streamed from the generator
    /// into Lumen (no NDJSON on disk), then queried next to DuckDB and chDB on the same Parquet files.
    Queries(RunArgs),
    /// Profile the release server with perf while it ingests and answers the query suite: where the time
    /// goes, per stage of the data path (needs root or perf_event_paranoid <= 1, and linux-perf).
    Profile(RunArgs),
    /// Write lumen-redact's labelled corpus as JSON (documents with the sensitive values planted in them
    /// and the look-alikes that must survive), for end-to-end checks of what ingest stores.
    RedactionCorpus {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 3000)]
        documents: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Small data and few runs: proves the harness works (CI), numbers mean little.
    #[arg(long)]
    quick: bool,
    /// Spans per dataset.
    #[arg(long, default_value_t = 1_000_000)]
    spans: u64,
    /// Timed runs per query (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Concurrent ingest clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The lumen binary to measure.
    #[arg(long, default_value = "target/release/lumen")]
    lumen: PathBuf,
    /// Python with duckdb installed (the peer).
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Scratch directory (data sets, data dirs).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Also write the tables to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The lumen-sensor binary for the sensor's overhead and completeness (default: next to --lumen).
    #[arg(long)]
    sensor: Option<PathBuf>,
    /// Leave out the sensor measurements (they need root).
    #[arg(long)]
    no_sensor: bool,
    /// Run the query suite on a data set of this many spans with content, streamed from the generator
    /// into Lumen (for sizes whose NDJSON would not fit on disk); default: the `--spans` data set.
    #[arg(long)]
    query_spans: Option<u64>,
}

const START_UNIX: i64 = 1_795_852_800; // 2026-11-28T08:00:00Z
const HOURS: i64 = 24;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Gen {
            spans,
            seed,
            content,
            out,
            start,
            hours,
        } => {
            let start_unix = match start.as_deref() {
                None => START_UNIX,
                Some(text) => datagen::parse_start(text, chrono::Utc::now().timestamp())
                    .map_err(|e| anyhow::anyhow!("--start: {e}"))?,
            };
            if hours < 1 {
                bail!("--hours: at least 1");
            }
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            datagen::generate(
                &datagen::Options {
                    spans,
                    seed,
                    content,
                    start_unix,
                    seconds: hours * 3600,
                },
                &mut w,
            )?;
            Ok(())
        }
        Cmd::RedactionCorpus {
            seed,
            documents,
            out,
        } => {
            let samples: Vec<serde_json::Value> = lumen_redact::corpus::generate(seed, documents)
                .into_iter()
                .map(|sample| {
                    let piece = |range: &std::ops::Range<usize>| {
                        sample
                            .text
                            .get(range.clone())
                            .unwrap_or_default()
                            .to_string()
                    };
                    serde_json::json!({
                        "format": format!("{:?}", sample.format).to_lowercase(),
                        "planted": sample.planted.iter().map(|p| serde_json::json!({
                            "kind": p.kind.name(), "value": piece(&p.range),
                        })).collect::<Vec<_>>(),
                        "decoys": sample.decoys.iter().map(|d| serde_json::json!({
                            "what": d.what, "value": piece(&d.range),
                        })).collect::<Vec<_>>(),
                        "text": sample.text,
                    })
                })
                .collect();
            std::fs::write(&out, serde_json::to_vec(&samples)?)
                .with_context(|| format!("writing {}", out.display()))?;
            Ok(())
        }
        Cmd::Profile(args) => report(&args, profile_run(&args)),
        Cmd::Ingest { args, baseline } => report(&args, ingest_ab(&args, baseline.as_deref())),
        Cmd::Queries(mut args) => {
            if args.quick {
                args.spans = args.spans.min(20_000);
                args.runs = args.runs.min(2);
            }
            report(&args, queries_at_scale(&args))
        }
        Cmd::Run(mut args) => {
            if args.quick {
                args.spans = args.spans.min(20_000);
                args.runs = args.runs.min(2);
                args.query_spans = args.query_spans.map(|n| n.min(20_000));
            }
            report(&args, run(&args))
        }
    }
}

/// Runs a measurement, prints its tables, and writes them to `--out` when given.
fn report(
    args: &RunArgs,
    tables: impl std::future::Future<Output = anyhow::Result<String>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(tables)?;
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

struct Server {
    child: Child,
    url: String,
    pid: u32,
}

impl Server {
    async fn start(lumen: &Path, data_dir: &Path) -> anyhow::Result<Server> {
        // `full`: the tables compare storing what was sent with DuckDB, which stores it as it is; the
        // capture policy's cost has its own table.
        Self::start_with(lumen, data_dir, &["--capture", "full"]).await
    }

    async fn start_with(lumen: &Path, data_dir: &Path, extra: &[&str]) -> anyhow::Result<Server> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = Command::new(lumen)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(["--query-max-rows", "10000000", "--query-timeout", "600s"])
            .args(extra)
            .env("LUMEN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", lumen.display()))?;
        let pid = child.id();
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            pid,
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client
                .get(format!("{}/healthz", server.url))
                .send()
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("lumen did not start")
    }

    /// Peak resident memory (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(str::to_string)
            })
            .and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn stop(mut self) -> anyhow::Result<()> {
        // SIGTERM: a clean stop flushes what is left.
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn dir_bytes(dir: &Path, ext: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

struct IngestResult {
    seconds: f64,
    bytes: u64,
    peak_rss_mib: f64,
    parquet_bytes: u64,
}

/// Where the bodies of an ingest come from.
enum Source {
    /// An NDJSON file (what DuckDB converts in the same run).
    File(PathBuf),
    /// The generator itself, line by line as the clients need them: for data sets too big to keep as
    /// NDJSON (10 M spans with content are 58 GB of it). The generator runs on a thread of its own
    /// in the bench process, on the same cores as the server.
    Generator(datagen::Options),
}

/// Lines per request body.
const BODY_LINES: usize = 2000;

/// A `Write` that cuts what is written into bodies of [`BODY_LINES`] whole lines and sends them on.
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    body: Vec<u8>,
    lines: usize,
}

impl BodyWriter {
    fn send(&mut self, body: Vec<u8>) -> std::io::Result<()> {
        self.tx
            .blocking_send(body)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "ingest stopped"))
    }

    /// Sends what is left (the last lines, fewer than a full body).
    fn finish(mut self) -> std::io::Result<()> {
        let last = std::mem::take(&mut self.body);
        if last.is_empty() {
            return Ok(());
        }
        self.send(last)
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut rest = data;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.body.extend_from_slice(&rest[..=at]);
            rest = &rest[at + 1..];
            self.lines += 1;
            if self.lines == BODY_LINES {
                self.lines = 0;
                let body = std::mem::take(&mut self.body);
                self.send(body)?;
            }
        }
        self.body.extend_from_slice(rest);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The request bodies of an ingest, and the thread that produces them.
type Bodies = (
    tokio::sync::mpsc::Receiver<Vec<u8>>,
    std::thread::JoinHandle<std::io::Result<()>>,
);

/// Starts a thread that produces the bodies of `source`; the channel closes when it is exhausted.
fn bodies(source: &Source) -> anyhow::Result<Bodies> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut writer = BodyWriter {
        tx,
        body: Vec::new(),
        lines: 0,
    };
    let thread = match source {
        Source::File(path) => {
            let mut file = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            );
            std::thread::spawn(move || {
                std::io::copy(&mut file, &mut writer)?;
                writer.finish()
            })
        }
        Source::Generator(options) => {
            let options = options.clone();
            std::thread::spawn(move || {
                datagen::generate(&options, &mut writer)?;
                writer.finish()
            })
        }
    };
    Ok((rx, thread))
}

async fn ingest(args: &RunArgs, ndjson: &Path, data_dir: &Path) -> anyhow::Result<IngestResult> {
    ingest_with(args, ndjson, data_dir, "full").await
}

async fn ingest_with(
    args: &RunArgs,
    ndjson: &Path,
    data_dir: &Path,
    capture: &str,
) -> anyhow::Result<IngestResult> {
    ingest_profiled(
        args,
        &Source::File(ndjson.to_path_buf()),
        data_dir,
        capture,
        None,
    )
    .await
}

/// Ingests `source` with `args.clients` concurrent clients; with `perf`, samples the server from start
/// to exit (the ingest and the last flush) into that file.
async fn ingest_profiled(
    args: &RunArgs,
    source: &Source,
    data_dir: &Path,
    capture: &str,
    perf: Option<&Path>,
) -> anyhow::Result<IngestResult> {
    let _ = std::fs::remove_dir_all(data_dir);
    let server = Server::start_with(&args.lumen, data_dir, &["--capture", capture]).await?;
    let recorder = perf
        .map(|out| profile::record(server.pid, out))
        .transpose()?;
    let client = reqwest::Client::new();
    let (rx, producer) = bodies(source)?;
    let queue = Arc::new(tokio::sync::Mutex::new(rx));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let queue = queue.clone();
        let sent = sent.clone();
        let client = client.clone();
        let url = format!("{}/v1/spans", server.url);
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().await.recv().await else {
                    return Ok::<_, anyhow::Error>(());
                };
                let len = body.len() as u64;
                let body = bytes::Bytes::from(body);
                loop {
                    let r = client
                        .post(&url)
                        .header("Content-Type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        200 => break,
                        503 => tokio::time::sleep(Duration::from_millis(200)).await,
                        s => bail!(
                            "ingest answered {s}: {}",
                            r.text().await.unwrap_or_default()
                        ),
                    }
                }
                sent.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    match producer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("reading the spans to ingest: {e}"),
        Err(_) => bail!("the span producer panicked"),
    }
    let peak_rss_mib = server.peak_rss_mib();
    server.stop()?;
    if let Some(mut recorder) = recorder {
        recorder.wait()?;
    }
    Ok(IngestResult {
        seconds,
        bytes: sent.load(std::sync::atomic::Ordering::Relaxed),
        peak_rss_mib,
        parquet_bytes: dir_bytes(&data_dir.join("spans"), "parquet"),
    })
}

fn peer(args: &RunArgs, cli_args: &[String]) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb_peer.py");
    let out = Command::new(&args.python)
        .arg(script)
        .args(cli_args)
        .output()
        .context("running the DuckDB peer")?;
    if !out.status.success() {
        bail!(
            "DuckDB peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn queries(trace_id: &str) -> Vec<(&'static str, String)> {
    let last_hour = chrono::DateTime::from_timestamp(START_UNIX + (HOURS - 1) * 3600, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    vec![
        ("P90/P99 latency by model", "SELECT request_model, quantile_cont(duration_ms, 0.9) AS p90, quantile_cont(duration_ms, 0.99) AS p99 FROM spans GROUP BY 1 ORDER BY 1".into()),
        ("P90/P99 latency by model, last hour", format!("SELECT request_model, quantile_cont(duration_ms, 0.9) AS p90, quantile_cont(duration_ms, 0.99) AS p99 FROM spans WHERE start_time >= '{last_hour}' GROUP BY 1 ORDER BY 1")),
        ("token distribution by model", "SELECT request_model, count(*) AS calls, avg(input_tokens) AS avg_in, quantile_cont(input_tokens, 0.5) AS p50_in, quantile_cont(output_tokens, 0.9) AS p90_out, sum(input_tokens) AS input, sum(output_tokens) AS output FROM spans GROUP BY 1 ORDER BY 1".into()),
        ("error rate by provider", "SELECT provider, count(*) FILTER (WHERE error_type IS NOT NULL) * 1.0 / count(*) AS error_rate FROM spans GROUP BY 1 ORDER BY 1".into()),
        ("SLA breaches over 1 s by service", "SELECT service_name, count(*) FILTER (WHERE duration_ms > 1000) AS breaches, count(*) AS calls FROM spans GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20".into()),
        ("top 20 slowest calls with prompts", "SELECT span_id, request_model, duration_ms, input_messages FROM spans ORDER BY duration_ms DESC LIMIT 20".into()),
        ("one trace by trace_id", format!("SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY start_time")),
        ("daily cost per model", "SELECT date_trunc('day', start_time) AS day, request_model, sum(cost_usd) AS cost FROM spans GROUP BY 1, 2 ORDER BY 1, 2".into()),
    ]
}

async fn http_query(client: &reqwest::Client, url: &str, sql: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let r = client
        .post(format!("{url}/v1/sql"))
        .json(&serde_json::json!({"sql": sql, "format": "arrow"}))
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    if !status.is_success() {
        bail!("query failed: {}", String::from_utf8_lossy(&body));
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn in_process(
    data_dir: &Path,
    sqls: &[String],
    runs: usize,
) -> anyhow::Result<Vec<(f64, f64)>> {
    use lumen_query::{QueryEngine, QueryOptions};
    let store = lumen_storage::open_store(
        &lumen_storage::StorageLocation::Local(data_dir.to_path_buf()),
        &Default::default(),
    )?;
    let manifest = Arc::new(lumen_storage::Manifest::load(store.clone(), "bench").await?);
    let buffer = Arc::new(lumen_ingest::HotBuffer::new(1));
    let options = QueryOptions {
        max_rows: usize::MAX,
        timeout: Duration::from_secs(600),
        ..QueryOptions::default()
    };
    let engine = QueryEngine::new(store, buffer, manifest, &options)?;
    let mut out = Vec::new();
    for sql in sqls {
        let started = Instant::now();
        engine.query(sql).await?;
        let cold = started.elapsed().as_secs_f64();
        let mut hot = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            engine.query(sql).await?;
            hot.push(started.elapsed().as_secs_f64());
        }
        out.push((cold, median(hot)));
    }
    Ok(out)
}

async fn freshness(args: &RunArgs, data_dir: &Path) -> anyhow::Result<(f64, f64)> {
    let server = Server::start(&args.lumen, data_dir).await?;
    let client = reqwest::Client::new();
    let mut waits = Vec::new();
    for i in 0..if args.quick { 20 } else { 200 } {
        let id = format!("fresh{i:08x}");
        let body = format!(
            "{{\"span_id\":\"{id}\",\"start_time\":{}}}",
            (START_UNIX + 3600) * 1_000_000_000
        );
        let r = client
            .post(format!("{}/v1/spans", server.url))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("freshness ingest failed: {}", r.status());
        }
        let acked = Instant::now();
        loop {
            let r = client
                .post(format!("{}/v1/sql", server.url))
                .json(&serde_json::json!({"sql": format!("SELECT count(*) FROM spans WHERE span_id = '{id}'")}))
                .send()
                .await?
                .json::<serde_json::Value>()
                .await?;
            if r["rows"][0][0] == 1 {
                break;
            }
        }
        waits.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    server.stop()?;
    waits.sort_by(f64::total_cmp);
    let p = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    Ok((p(0.5), p(0.99)))
}

/// The data set of `run` (generated once, kept in the work dir).
fn dataset(args: &RunArgs, work: &Path, seed: u64, content: bool) -> anyhow::Result<PathBuf> {
    let ndjson = work.join(format!("spans-{seed}-{}.ndjson", args.spans));
    if !ndjson.exists() {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&ndjson)?);
        datagen::generate(
            &datagen::Options {
                spans: args.spans,
                seed,
                content,
                start_unix: START_UNIX,
                seconds: HOURS * 3600,
            },
            &mut w,
        )?;
    }
    Ok(ndjson)
}

async fn profile_run(args: &RunArgs) -> anyhow::Result<String> {
    let work = prepare(args)?;
    let mut out = format!(
        "Profiles of `{}` (perf record -F 499, cpu-clock, flat self time of every thread), {} spans, {} ingest clients.\n\n",
        args.lumen.display(),
        args.spans,
        args.clients
    );
    for (label, content, seed) in [("metadata only", false, 1), ("with content", true, 2)] {
        let ndjson = dataset(args, &work, seed, content)?;
        let data_dir = work.join(format!("profile-{seed}"));
        let perf = profile::data_path(&work, &format!("ingest-{seed}"));
        let result =
            ingest_profiled(args, &Source::File(ndjson), &data_dir, "full", Some(&perf)).await?;
        out.push_str(&profile::report(
            &format!(
                "Ingest {label}: {:.0} spans/s, then the last flush",
                args.spans as f64 / result.seconds
            ),
            &perf,
        )?);
    }
    // The query suite, three times over, on the data with content (as in the query table).
    let data_dir = work.join("profile-2");
    let server = Server::start(&args.lumen, &data_dir).await?;
    let perf = profile::data_path(&work, "queries");
    let recorder = profile::record(server.pid, &perf)?;
    let client = reqwest::Client::new();
    let trace_id = format!("{:016x}{:016x}", 2, args.spans / 6);
    for _ in 0..3 {
        for (_, sql) in queries(&trace_id) {
            http_query(&client, &server.url, &sql).await?;
        }
    }
    profile::stop(recorder)?;
    server.stop()?;
    out.push_str(&profile::report(
        "The query suite (8 queries × 3, over HTTP, data with content)",
        &perf,
    )?);
    Ok(out)
}

/// The work directory (created) after checking that the binary to measure exists.
fn prepare(args: &RunArgs) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&args.work)?;
    if !args.lumen.exists() {
        bail!(
            "{} does not exist: build it first (cargo build --release)",
            args.lumen.display()
        );
    }
    Ok(args.work.canonicalize()?)
}

/// The first line of a report: the machine and the settings of the run.
fn header(args: &RunArgs) -> String {
    let machine = format!(
        "{} cores, {} GiB RAM",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().and_then(|l| l
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()))
            .map_or(0, |kb| kb / 1024 / 1024)
    );
    format!(
        "Machine: {machine}. Lumen binary: `{}`. Spans per data set: {}. Timed runs per query: {} (median). Ingest clients: {}.{}\n\n",
        args.lumen.display(),
        args.spans,
        args.runs,
        args.clients,
        if args.quick {
            " **Quick mode: proves the harness, not the numbers.**"
        } else {
            ""
        }
    )
}

async fn run(args: &RunArgs) -> anyhow::Result<String> {
    let work = prepare(args)?;
    let mut report = header(args);

    // 1 + 2: ingest and storage, metadata-only and with content.
    report.push_str("### Ingest (POST /v1/spans, durable) vs DuckDB NDJSON → Parquet\n\n");
    report.push_str("| data | spans | NDJSON MB | Lumen s | Lumen spans/s | Lumen MB/s | Lumen peak RSS MiB | DuckDB s | Lumen / DuckDB time |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut storage_rows = Vec::new();
    for (label, content, seed) in [("metadata only", false, 1), ("with content", true, 2)] {
        let ndjson = dataset(args, &work, seed, content)?;
        let data_dir = work.join(format!("lumen-{seed}"));
        let ours = ingest(args, &ndjson, &data_dir).await?;
        let duck_out = work.join(format!("duckdb-{seed}.parquet"));
        let duck = peer(
            args,
            &[
                "convert".into(),
                ndjson.display().to_string(),
                duck_out.display().to_string(),
            ],
        )?;
        let duck_s = duck["seconds"].as_f64().unwrap_or(f64::NAN);
        let mb = ours.bytes as f64 / 1e6;
        report.push_str(&format!(
            "| {label} | {} | {mb:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {duck_s:.2} | {:.2} |\n",
            args.spans,
            ours.seconds,
            args.spans as f64 / ours.seconds,
            mb / ours.seconds,
            ours.peak_rss_mib,
            ours.seconds / duck_s,
        ));
        storage_rows.push((
            label,
            ours.bytes,
            ours.parquet_bytes,
            duck["bytes"].as_u64().unwrap_or(0),
        ));
    }
    report.push_str("\n### Storage: bytes per span\n\n| data | NDJSON | Lumen Parquet | DuckDB Parquet | Lumen / DuckDB |\n|---|---|---|---|---|\n");
    for (label, ndjson, lumen, duck) in storage_rows {
        let n = args.spans as f64;
        report.push_str(&format!(
            "| {label} | {:.0} | {:.0} | {:.0} | {:.2} |\n",
            ndjson as f64 / n,
            lumen as f64 / n,
            duck as f64 / n,
            lumen as f64 / duck as f64
        ));
    }

    // 3: queries on the content data set's Parquet files, or on a bigger one streamed from the
    // generator (`--query-spans`).
    let (data_dir, query_spans) = match args.query_spans.filter(|&n| n != args.spans) {
        None => (work.join("lumen-2"), args.spans),
        Some(n) => {
            let (data_dir, load) = streamed_data_set(args, &work, n).await?;
            report.push_str(&load);
            (data_dir, n)
        }
    };
    let trace_id = format!("{:016x}{:016x}", 2, query_spans / 6);
    report.push_str(&query_suite(args, &data_dir, query_spans, &trace_id).await?);

    // 4: freshness.
    let (p50, p99) = freshness(args, &work.join("lumen-fresh")).await?;
    report.push_str(&format!(
        "\n### Freshness: ingest 200 → visible to SQL\n\n| p50 ms | p99 ms |\n|---|---|\n| {p50:.2} | {p99:.2} |\n"
    ));
    // The capture policy on ingest, and the redaction engine it (and the sensor's default mode) runs.
    report.push_str(&policy_bench(args, &work).await?);
    report.push_str(&redaction_bench(args, &work)?);

    // 5: the eBPF sensor (its own script: a TLS workload in Python on the system's libssl).
    if !args.no_sensor {
        report.push('\n');
        report.push_str(&sensor_bench(args)?);
    }
    Ok(report)
}

/// `lumen-bench ingest`: medians of `--runs` ingests of each data set, for `--lumen` and, alternating
/// with it, the baseline binary.
async fn ingest_ab(args: &RunArgs, baseline: Option<&Path>) -> anyhow::Result<String> {
    let work = prepare(args)?;
    let mut report = header(args);
    let mut binaries = vec![("lumen", args.lumen.clone())];
    if let Some(baseline) = baseline {
        binaries.push(("baseline", baseline.to_path_buf()));
    }
    report.push_str(&format!(
        "### Ingest (POST /v1/spans, durable), median of {} runs\n\n| data | binary | s | spans/s | MB/s | peak RSS MiB | vs baseline (spans/s) |\n|---|---|---|---|---|---|---|\n",
        args.runs
    ));
    for (label, content, seed) in [("metadata only", false, 1), ("with content", true, 2)] {
        let ndjson = dataset(args, &work, seed, content)?;
        let mut results: Vec<Vec<IngestResult>> = binaries.iter().map(|_| Vec::new()).collect();
        for _ in 0..args.runs {
            for ((_, binary), results) in binaries.iter().zip(results.iter_mut()) {
                let run_args = RunArgs {
                    lumen: binary.clone(),
                    ..args.clone()
                };
                results.push(ingest(&run_args, &ndjson, &work.join("lumen-ab")).await?);
            }
        }
        let rates: Vec<f64> = results
            .iter()
            .map(|r| args.spans as f64 / median(r.iter().map(|r| r.seconds).collect()))
            .collect();
        for (i, ((name, binary), results)) in binaries.iter().zip(&results).enumerate() {
            let seconds = median(results.iter().map(|r| r.seconds).collect());
            let mb = results.first().map_or(0, |r| r.bytes) as f64 / 1e6;
            let rss = median(results.iter().map(|r| r.peak_rss_mib).collect());
            report.push_str(&format!(
                "| {label} | {name} (`{}`) | {seconds:.2} | {:.0} | {:.1} | {rss:.0} | {} |\n",
                binary.display(),
                rates[i],
                mb / seconds,
                rates
                    .get(1)
                    .map_or("".into(), |b| format!("{:.2}", rates[i] / b)),
            ));
        }
    }
    Ok(report)
}

/// `lumen-bench queries`: the load of a streamed data set and the query suite on it.
async fn queries_at_scale(args: &RunArgs) -> anyhow::Result<String> {
    let work = prepare(args)?;
    let mut report = header(args);
    let (data_dir, load) = streamed_data_set(args, &work, args.spans).await?;
    report.push_str(&load);
    let trace_id = format!("{:016x}{:016x}", 2, args.spans / 6);
    report.push_str(&query_suite(args, &data_dir, args.spans, &trace_id).await?);
    Ok(report)
}

/// A data set whose NDJSON would not fit on disk (10 M spans with content are 58 GB): the spans with
/// content (the same as `run`'s data set of that size) are streamed from the generator into
/// `POST /v1/spans`. A load of the same size done before is reused. Returns Lumen's data dir and the
/// table of the load.
async fn streamed_data_set(
    args: &RunArgs,
    work: &Path,
    spans: u64,
) -> anyhow::Result<(PathBuf, String)> {
    let data_dir = work.join(format!("lumen-stream-{spans}"));
    let record = work.join(format!("lumen-stream-{spans}.json"));
    let earlier = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|_| data_dir.join("spans").is_dir());
    let load = match earlier {
        Some(load) => load,
        None => {
            let _ = std::fs::remove_file(&record);
            let source = Source::Generator(datagen::Options {
                spans,
                seed: 2,
                content: true,
                start_unix: START_UNIX,
                seconds: HOURS * 3600,
            });
            let r = ingest_profiled(args, &source, &data_dir, "full", None).await?;
            let load = serde_json::json!({
                "seconds": r.seconds, "bytes": r.bytes, "peak_rss_mib": r.peak_rss_mib,
                "parquet_bytes": r.parquet_bytes, "at": chrono::Utc::now().to_rfc3339(),
            });
            std::fs::write(&record, serde_json::to_vec(&load)?)
                .with_context(|| format!("writing {}", record.display()))?;
            load
        }
    };
    let number = |key: &str| load[key].as_f64().unwrap_or(f64::NAN);
    let (seconds, mb) = (number("seconds"), number("bytes") / 1e6);
    let table = format!(
        "\n### Load of the query data set: spans with content streamed from the generator into POST /v1/spans (durable; loaded {})\n\n| spans | NDJSON MB | s | spans/s | MB/s | peak RSS MiB | Lumen Parquet bytes/span |\n|---|---|---|---|---|---|---|\n| {spans} | {mb:.0} | {seconds:.1} | {:.0} | {:.1} | {:.0} | {:.0} |\n",
        load["at"].as_str().unwrap_or("?"),
        spans as f64 / seconds,
        mb / seconds,
        number("peak_rss_mib"),
        number("parquet_bytes") / spans as f64,
    );
    Ok((data_dir, table))
}

/// The query suite on the Parquet files of `data_dir`: Lumen over HTTP (a server started on it) and in
/// process, DuckDB and chDB on the very same files, cold and hot; one table and the geometric means.
async fn query_suite(
    args: &RunArgs,
    data_dir: &Path,
    spans: u64,
    trace_id: &str,
) -> anyhow::Result<String> {
    let suite = queries(trace_id);
    let sqls: Vec<String> = suite.iter().map(|(_, s)| s.clone()).collect();
    let server = Server::start(&args.lumen, data_dir).await?;
    let client = reqwest::Client::new();
    let mut http = Vec::new();
    for sql in &sqls {
        let cold = http_query(&client, &server.url, sql).await?;
        let mut hot = Vec::new();
        for _ in 0..args.runs {
            hot.push(http_query(&client, &server.url, sql).await?);
        }
        http.push((cold, median(hot)));
    }
    server.stop()?;
    let local = in_process(data_dir, &sqls, args.runs).await?;
    let glob = data_dir
        .join("spans")
        .join("**")
        .join("*.parquet")
        .display()
        .to_string();
    let mut peer_args = vec!["queries".to_string(), glob, args.runs.to_string()];
    peer_args.extend(sqls.iter().cloned());
    let duck = peer(args, &peer_args)?;
    peer_args[0] = "chdb-queries".into();
    let ch = peer(args, &peer_args)?;
    let ch_missing = ch["missing"].as_str().map(str::to_string);
    let mut report = format!(
        "\n### Queries on {} spans with content (the same Parquet files)\n\n| query | Lumen HTTP cold ms | Lumen HTTP hot ms | Lumen in-process hot ms | DuckDB cold ms | DuckDB hot ms | chDB cold ms | chDB hot ms | Lumen HTTP / DuckDB (hot) | Lumen HTTP / chDB (hot) |\n|---|---|---|---|---|---|---|---|---|---|\n",
        spans
    );
    let hot_of = |peer: &serde_json::Value, i: usize| {
        median(
            peer["hot"][i]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
                .unwrap_or_default(),
        )
    };
    let (mut log_duck, mut log_ch) = (0.0, 0.0);
    for (i, (name, _)) in suite.iter().enumerate() {
        let d_cold = duck["cold"][i].as_f64().unwrap_or(f64::NAN);
        let d_hot = hot_of(&duck, i);
        let c_cold = ch["cold"][i].as_f64().unwrap_or(f64::NAN);
        let c_hot = hot_of(&ch, i);
        let ratio = http[i].1 / d_hot;
        let ratio_ch = http[i].1 / c_hot;
        log_duck += ratio.ln();
        log_ch += ratio_ch.ln();
        report.push_str(&format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio:.2} | {ratio_ch:.2} |\n",
            http[i].0 * 1e3,
            http[i].1 * 1e3,
            local[i].1 * 1e3,
            d_cold * 1e3,
            d_hot * 1e3,
            c_cold * 1e3,
            c_hot * 1e3,
        ));
    }
    let n = suite.len() as f64;
    report.push_str(&format!(
        "\nGeometric mean of Lumen HTTP / DuckDB (hot): **{:.2}**; Lumen HTTP / chDB (hot): **{:.2}**\n",
        (log_duck / n).exp(),
        (log_ch / n).exp()
    ));
    if let Some(why) = ch_missing {
        report.push_str(&format!("\nchDB was not measured: {why}.\n"));
    }
    Ok(report)
}

/// Ingest of the content data set under each capture mode: what the server-side policy costs.
async fn policy_bench(args: &RunArgs, work: &Path) -> anyhow::Result<String> {
    let ndjson = work.join(format!("spans-2-{}.ndjson", args.spans));
    let mut out = String::from(
        "\n### Capture policy on ingest (spans with content, POST /v1/spans, durable)\n\n| --capture | s | spans/s | MB/s | vs full |\n|---|---|---|---|---|\n",
    );
    let mut full_s = f64::NAN;
    for mode in ["full", "redacted", "metadata"] {
        // Medians of three runs: one ingest is short and the machine is shared.
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..if args.quick { 1 } else { 3 } {
            let r = ingest_with(
                args,
                &ndjson,
                &work.join(format!("lumen-policy-{mode}")),
                mode,
            )
            .await?;
            times.push(r.seconds);
            bytes = r.bytes;
        }
        let s = median(times);
        if mode == "full" {
            full_s = s;
        }
        out.push_str(&format!(
            "| {mode} | {s:.2} | {:.0} | {:.1} | {:.2} |\n",
            args.spans as f64 / s,
            bytes as f64 / 1e6 / s,
            full_s / s,
        ));
    }
    Ok(out)
}

/// Single-thread throughput of `lumen-redact` over its labelled corpus and over clean text of the same
/// size, next to scrubadub (Python) on the very same texts.
fn redaction_bench(args: &RunArgs, work: &Path) -> anyhow::Result<String> {
    use lumen_redact::corpus;
    let quick = args.quick;
    let min_time = Duration::from_millis(if quick { 200 } else { 3000 });
    let redactor = match lumen_redact::Redactor::new(&lumen_redact::RedactConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            return Ok(format!(
                "\n### Redaction\n\nthe default configuration failed: {e}\n"
            ));
        }
    };
    let samples = corpus::generate(42, if quick { 300 } else { 3000 });
    let dense: Vec<String> = samples.iter().map(|s| s.text.clone()).collect();
    let total: usize = dense.iter().map(String::len).sum();
    let mut out = String::from(
        "\n### Redaction throughput (one thread, default rules) vs scrubadub on the same texts\n\n| text | MB | lumen-redact MB/s | replacements per pass | scrubadub MB/s | lumen / scrubadub |\n|---|---|---|---|---|---|\n",
    );
    for (label, texts) in [
        ("labelled corpus (~2.4 sensitive values per 600 B)", dense),
        (
            "prose with dates, versions, prices, ids",
            corpus::documents(&corpus::clean_text(42, total), 2000),
        ),
        (
            "plain chat prose",
            corpus::documents(&corpus::plain_prose(42, total), 2000),
        ),
    ] {
        let t = corpus::measure_throughput(&redactor, &texts, min_time);
        // The peer is slow: it gets a slice of the texts (throughput does not depend on the count).
        let sample: Vec<&String> = texts.iter().take(if quick { 20 } else { 300 }).collect();
        let path = work.join("redaction-texts.json");
        std::fs::write(&path, serde_json::to_vec(&sample)?)?;
        let peer_out = Command::new(&args.python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("redact_peer.py"))
            .arg(&path)
            .arg(if quick { "0.2" } else { "3" })
            .output()
            .context("running the scrubadub peer")?;
        if !peer_out.status.success() {
            bail!(
                "scrubadub peer failed: {}",
                String::from_utf8_lossy(&peer_out.stderr)
            );
        }
        let peer: serde_json::Value = serde_json::from_slice(&peer_out.stdout)?;
        let peer_mb_s = peer["mb_per_s"].as_f64().unwrap_or(f64::NAN);
        out.push_str(&format!(
            "| {label} | {:.2} | {:.0} | {} | {peer_mb_s:.2} | {:.0} |\n",
            texts.iter().map(String::len).sum::<usize>() as f64 / 1e6,
            t.mb_per_s,
            t.findings_per_pass,
            t.mb_per_s / peer_mb_s,
        ));
    }
    Ok(out)
}

fn sensor_bench(args: &RunArgs) -> anyhow::Result<String> {
    let sensor = args
        .sensor
        .clone()
        .unwrap_or_else(|| args.lumen.with_file_name("lumen-sensor"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sensor_bench.py");
    let mut command = Command::new(&args.python);
    command
        .arg(script)
        .arg("--sensor")
        .arg(&sensor)
        .arg("--lumen")
        .arg(&args.lumen)
        .arg("--work")
        .arg(args.work.join("sensor"));
    if args.quick {
        command.arg("--quick");
    }
    let out = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the sensor benchmark")?;
    if !out.status.success() {
        bail!("the sensor benchmark failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
