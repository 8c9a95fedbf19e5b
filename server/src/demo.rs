//! `lumen demo`: a populated Lumen in one command. Starts the server on its embedded default (a local
//! directory), seeds it once with the benchmark generator's realistic spans over the last hours, keeps a
//! trickle of live spans coming, and prints the web UI's address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::config::ServeArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address the server (and its web UI) listens on.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    /// Data directory of the demo (kept between runs: seeded only once).
    #[arg(long, default_value = "./lumen-demo-data")]
    pub data_dir: PathBuf,
    /// Generated spans to seed with, spread over the last --hours.
    #[arg(long, default_value_t = 50_000)]
    pub spans: u64,
    /// Hours of history to seed.
    #[arg(long, default_value_t = 24)]
    pub hours: i64,
    /// Live spans per second after seeding (0: none).
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Seed of the generator (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Do not run the eBPF sensor even where the machine allows it (root).
    #[arg(long)]
    pub no_sensor: bool,
    /// The lumen-sensor binary. [default: next to this one]
    #[arg(long)]
    pub sensor_bin: Option<PathBuf>,
    /// Calls per second the demo client makes to the local provider while the sensor watches.
    #[arg(long, default_value_t = 1.0)]
    pub live_calls: f64,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Child processes that end with the demo.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The live captures: a local provider, a client process calling it, and the sensor watching that
/// process. Answers the two children (killed when dropped) or why they were not started.
async fn start_live_captures(args: &DemoArgs) -> Result<Children, String> {
    if args.no_sensor {
        return Err("--no-sensor".into());
    }
    if !is_root() {
        return Err("eBPF needs root; run as root to see the sensor's own captures".into());
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let sensor = args
        .sensor_bin
        .clone()
        .unwrap_or_else(|| me.with_file_name("lumen-sensor"));
    if !sensor.exists() {
        return Err(format!(
            "{} is not there (cargo build --workspace builds it)",
            sensor.display()
        ));
    }
    let provider = crate::demo_llm::start_provider()
        .await
        .map_err(|e| format!("starting the demo provider: {e}"))?;
    let client = std::process::Command::new(&me)
        .args([
            "demo-load",
            "--url",
            &format!("http://{provider}"),
            "--rate",
            &args.live_calls.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the demo client: {e}"))?;
    let pid = client.id();
    let mut children = Children(vec![client]);
    let log = std::fs::File::create(args.data_dir.join("sensor.log"))
        .map_err(|e| format!("creating sensor.log: {e}"))?;
    let sensor = std::process::Command::new(&sensor)
        .args([
            "run",
            "--endpoint",
            &format!("http://{}", args.listen),
            "--pid",
            &pid.to_string(),
            "--batch-age-ms",
            "500",
            "--spool-dir",
        ])
        .arg(args.data_dir.join("sensor-spool"))
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", sensor.display()))?;
    children.0.push(sensor);
    Ok(children)
}

/// Spans per ingest request while seeding.
const CHUNK: u64 = 2_000;

fn ndjson(spans: u64, seed: u64, start_unix: i64, seconds: i64) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = lumen_datagen::generate(
        &lumen_datagen::Options {
            spans,
            seed,
            content: true,
            start_unix,
            seconds: seconds.max(1),
        },
        &mut out,
    );
    out
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .context("sending spans to the demo server")?;
    if !response.status().is_success() {
        bail!(
            "the demo server refused spans: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the demo server did not start within 60 s")
}

/// Seeds the history once per data dir (a marker file says it was done).
async fn seed(client: &reqwest::Client, base: &str, args: &DemoArgs) -> anyhow::Result<()> {
    let marker = args.data_dir.join("demo-seeded");
    if marker.exists() {
        eprintln!(
            "lumen demo: {} already holds the demo data",
            args.data_dir.display()
        );
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp();
    let total_secs = args.hours * 3600;
    let start = now - total_secs;
    let chunks = args.spans.div_ceil(CHUNK).max(1);
    let chunk_secs = total_secs / chunks as i64;
    let url = format!("{base}/v1/spans");
    let mut sent = 0;
    for k in 0..chunks {
        let n = CHUNK.min(args.spans - sent);
        if n == 0 {
            break;
        }
        // One seed per chunk keeps span ids unique (they start with the seed).
        let body = ndjson(
            n,
            args.seed * 100_000 + k,
            start + k as i64 * chunk_secs,
            chunk_secs,
        );
        post(client, &url, body).await?;
        sent += n;
        if k % 10 == 9 || sent == args.spans {
            eprintln!("lumen demo: seeded {sent} of {} spans", args.spans);
        }
    }
    std::fs::write(
        &marker,
        format!("{} spans, seed {}\n", args.spans, args.seed),
    )
    .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

/// Live spans, `rate` per second on average, stamped with the current time, until the process ends.
async fn trickle(client: reqwest::Client, base: String, rate: f64, seed: u64) {
    if rate <= 0.0 {
        return std::future::pending().await;
    }
    let url = format!("{base}/v1/spans");
    let mut owed = 0.0;
    let mut tick: u64 = 0;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        owed += rate;
        let n = owed.floor() as u64;
        owed -= n as f64;
        tick += 1;
        if n == 0 {
            continue;
        }
        let now = chrono::Utc::now().timestamp();
        // Live seeds are far from the seeding ones, so ids never collide.
        let body = ndjson(n, (seed + 1) * 1_000_000_000 + tick, now - 1, 1);
        if let Err(e) = post(&client, &url, body).await {
            tracing::warn!(error = %e, "live demo spans not sent");
        }
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "lumen demo listens on loopback only (it has no tokens); use lumen serve for anything else"
        );
    }
    if args.hours < 1 {
        bail!("--hours: at least 1");
    }
    let config = ServeArgs {
        listen: Some(args.listen),
        data_dir: Some(args.data_dir.clone()),
        ..ServeArgs::default()
    }
    .resolve()?;
    let server = tokio::spawn(crate::serve::run(config));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let base = format!("http://{}", args.listen);
    tokio::pin!(server);
    {
        let ready = async {
            wait_ready(&client, &base).await?;
            seed(&client, &base, &args).await
        };
        tokio::pin!(ready);
        tokio::select! {
            done = &mut server => return done.context("the demo server stopped")?,
            seeded = &mut ready => seeded?,
        }
    }
    let _live = match start_live_captures(&args).await {
        Ok(children) => {
            eprintln!(
                "lumen demo: the eBPF sensor is capturing a demo client's calls to a local OpenAI-compatible \
                 provider (source ebpf, process lumen; sensor log in {})",
                args.data_dir.join("sensor.log").display()
            );
            Some(children)
        }
        Err(why) => {
            eprintln!("lumen demo: no live eBPF captures ({why}); generated live spans only");
            None
        }
    };
    println!(
        "lumen demo: open {base}/ in a browser (Ctrl-C stops it; data in {})",
        args.data_dir.display()
    );
    tokio::select! {
        done = &mut server => done.context("the demo server stopped")?,
        _ = trickle(client, base.clone(), args.rate, args.seed) => Ok(()),
    }
}
