//! Export of spans to a Lumen server (`POST /v1/spans`, gzip NDJSON, bearer token). `push` sends a fixed
//! set (replay); `Exporter` is the live path: batches by count and age, retries with backoff, and keeps
//! batches in a bounded on-disk spool while the server is unreachable, so that no span is lost until the
//! spool is full — and every span lost after that is counted.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use lumen_decoder::Span;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

const BATCH: usize = 1000;
const ATTEMPTS: u32 = 6;

fn gzip_ndjson(spans: &[Span]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    for span in spans {
        writeln!(gz, "{}", span.to_json())?;
    }
    gz.finish()
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

fn spans_url(endpoint: &str) -> String {
    format!("{}/v1/spans", endpoint.trim_end_matches('/'))
}

/// Pushes `spans` and waits until the server accepted them (replay).
pub fn push(endpoint: &str, token: Option<&str>, spans: &[Span]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the export runtime")?;
    runtime.block_on(async {
        let url = spans_url(endpoint);
        let client = client()?;
        for batch in spans.chunks(BATCH) {
            let body = gzip_ndjson(batch)?;
            let mut delay = Duration::from_millis(200);
            for attempt in 1..=ATTEMPTS {
                match send(&client, &url, token, &body).await {
                    Ok(()) => break,
                    Err(Failure::Rejected(why)) => {
                        bail!("{url} rejected a batch of {} spans: {why}", batch.len())
                    }
                    Err(Failure::Retryable(why)) if attempt == ATTEMPTS => {
                        bail!("cannot push spans to {url}: {why}")
                    }
                    Err(Failure::Retryable(why)) => {
                        tracing::warn!("push to {url} failed, retrying: {why}")
                    }
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        tracing::info!(spans = spans.len(), "pushed to {url}");
        Ok(())
    })
}

enum Failure {
    /// The server refused the content (4xx other than 408/429): retrying cannot help.
    Rejected(String),
    /// Unreachable, overloaded or failing: try again later.
    Retryable(String),
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(), Failure> {
    let mut request = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(body.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            let why = format!("{status} {}", text.chars().take(300).collect::<String>());
            if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                Err(Failure::Rejected(why))
            } else {
                Err(Failure::Retryable(why))
            }
        }
        Err(e) => Err(Failure::Retryable(e.to_string())),
    }
}

pub struct ExportConfig {
    pub endpoint: String,
    pub token: Option<String>,
    pub batch_spans: usize,
    pub batch_age: Duration,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
}

/// Batches waiting on disk, oldest first; they survive a restart of the sensor.
struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<(PathBuf, u64, usize)>,
    bytes: u64,
    next_seq: u64,
}

impl Spool {
    fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let mut files = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            // <seq>-<spans>.ndjson.gz
            let Some(stem) = name.strip_suffix(".ndjson.gz") else {
                continue;
            };
            let Some((seq, n)) = stem.split_once('-') else {
                continue;
            };
            let (Ok(seq), Ok(n)) = (seq.parse::<u64>(), n.parse::<usize>()) else {
                continue;
            };
            files.push((seq, entry.path(), entry.metadata()?.len(), n));
        }
        files.sort();
        let next_seq = files.last().map_or(0, |f| f.0 + 1);
        let bytes = files.iter().map(|f| f.2).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            files: files.into_iter().map(|(_, p, b, n)| (p, b, n)).collect(),
            bytes,
            next_seq,
        })
    }

    fn spans(&self) -> usize {
        self.files.iter().map(|f| f.2).sum()
    }

    /// Keeps a batch; false when the spool has no room for it.
    fn put(&mut self, body: &[u8], spans: usize) -> bool {
        if self.bytes + body.len() as u64 > self.max_bytes {
            return false;
        }
        let path = self
            .dir
            .join(format!("{:020}-{spans}.ndjson.gz", self.next_seq));
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::error!("cannot write to the spool {}: {e}", self.dir.display());
            return false;
        }
        self.next_seq += 1;
        self.bytes += body.len() as u64;
        self.files.push_back((path, body.len() as u64, spans));
        true
    }
}

/// The live exporter: spans in through a bounded queue (`try_send`: a full queue is a counted drop,
/// never a stall of the capture loop).
pub struct Exporter {
    config: ExportConfig,
    client: reqwest::Client,
    url: String,
    spool: Spool,
    metrics: Arc<Metrics>,
    /// After a failure, batches go straight to the spool until this instant.
    down_until: Option<Instant>,
    backoff: Duration,
}

impl Exporter {
    pub fn new(config: ExportConfig, metrics: Arc<Metrics>) -> Result<Exporter> {
        let spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
        if !spool.files.is_empty() {
            tracing::info!(
                spans = spool.spans(),
                "{} batches waiting in the spool from an earlier run",
                spool.files.len()
            );
        }
        metrics.spool_bytes.set(spool.bytes as i64);
        Ok(Exporter {
            url: spans_url(&config.endpoint),
            client: client()?,
            config,
            spool,
            metrics,
            down_until: None,
            backoff: Duration::from_millis(500),
        })
    }

    pub async fn run(mut self, mut spans: mpsc::Receiver<Span>) {
        let mut batch: Vec<Span> = Vec::new();
        let mut oldest = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                received = spans.recv() => match received {
                    Some(span) => {
                        if batch.is_empty() {
                            oldest = Instant::now();
                        }
                        batch.push(span);
                        if batch.len() >= self.config.batch_spans {
                            self.flush(std::mem::take(&mut batch)).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if !batch.is_empty() && oldest.elapsed() >= self.config.batch_age {
                        self.flush(std::mem::take(&mut batch)).await;
                    } else if batch.is_empty() {
                        self.drain_spool().await;
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.flush(batch).await;
        }
        self.drain_spool().await;
        if !self.spool.files.is_empty() {
            tracing::warn!(
                spans = self.spool.spans(),
                "the server is unreachable; spans stay in the spool {} for the next start",
                self.spool.dir.display()
            );
        }
    }

    fn is_down(&self) -> bool {
        self.down_until.is_some_and(|t| Instant::now() < t)
    }

    fn went_down(&mut self, why: &str) {
        self.metrics.export_failures.inc();
        tracing::warn!(
            "cannot push spans to {}: {why}; retrying in {:?}",
            self.url,
            self.backoff
        );
        self.down_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
    }

    fn came_up(&mut self) {
        self.down_until = None;
        self.backoff = Duration::from_millis(500);
    }

    /// Sends spooled batches oldest first, stopping at the first failure.
    async fn drain_spool(&mut self) {
        while !self.is_down() {
            let Some((path, bytes, spans)) = self.spool.files.front().cloned() else {
                return;
            };
            let body = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("spool file {} unreadable, dropped: {e}", path.display());
                    self.metrics.dropped_spans.inc_by(spans as u64);
                    self.forget_front(bytes);
                    continue;
                }
            };
            match send(&self.client, &self.url, self.config.token.as_deref(), &body).await {
                Ok(()) => {
                    self.came_up();
                    self.metrics.exported_spans.inc_by(spans as u64);
                    let _ = std::fs::remove_file(&path);
                    self.forget_front(bytes);
                }
                Err(Failure::Rejected(why)) => {
                    tracing::error!(
                        "{} rejected a spooled batch of {spans} spans: {why}",
                        self.url
                    );
                    self.metrics.dropped_spans.inc_by(spans as u64);
                    let _ = std::fs::remove_file(&path);
                    self.forget_front(bytes);
                }
                Err(Failure::Retryable(why)) => {
                    self.went_down(&why);
                    return;
                }
            }
        }
    }

    fn forget_front(&mut self, bytes: u64) {
        self.spool.files.pop_front();
        self.spool.bytes = self.spool.bytes.saturating_sub(bytes);
        self.metrics.spool_bytes.set(self.spool.bytes as i64);
    }

    async fn flush(&mut self, batch: Vec<Span>) {
        let n = batch.len();
        let body = match gzip_ndjson(&batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode {n} spans: {e}");
                self.metrics.dropped_spans.inc_by(n as u64);
                return;
            }
        };
        self.drain_spool().await;
        if !self.is_down() && self.spool.files.is_empty() {
            match send(&self.client, &self.url, self.config.token.as_deref(), &body).await {
                Ok(()) => {
                    self.came_up();
                    self.metrics.exported_spans.inc_by(n as u64);
                    return;
                }
                Err(Failure::Rejected(why)) => {
                    tracing::error!("{} rejected a batch of {n} spans: {why}", self.url);
                    self.metrics.dropped_spans.inc_by(n as u64);
                    return;
                }
                Err(Failure::Retryable(why)) => self.went_down(&why),
            }
        }
        if self.spool.put(&body, n) {
            self.metrics.spooled_spans.inc_by(n as u64);
            self.metrics.spool_bytes.set(self.spool.bytes as i64);
        } else {
            tracing::error!(
                "spool full ({} bytes): {n} spans dropped",
                self.spool.max_bytes
            );
            self.metrics.dropped_spans.inc_by(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_keeps_order_and_bound_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        assert!(spool.put(&[1; 40], 3));
        assert!(spool.put(&[2; 40], 4));
        assert!(!spool.put(&[3; 40], 5), "over the bound");
        let reopened = Spool::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.spans(), 7);
        assert_eq!(reopened.bytes, 80);
        assert_eq!(reopened.next_seq, 2);
        let first = std::fs::read(&reopened.files[0].0).unwrap();
        assert_eq!(first, vec![1; 40]);
    }
}
