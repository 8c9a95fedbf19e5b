//! Export of spans to a Lumen server: NDJSON, gzip, in batches, with the bearer token; retried with
//! backoff on overload (503) and connection errors.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use lumen_decoder::Span;

const BATCH: usize = 1000;
const ATTEMPTS: u32 = 6;

pub fn push(endpoint: &str, token: Option<&str>, spans: &[Span]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the export runtime")?;
    runtime.block_on(push_async(endpoint, token, spans))
}

async fn push_async(endpoint: &str, token: Option<&str>, spans: &[Span]) -> Result<()> {
    let url = format!("{}/v1/spans", endpoint.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    for batch in spans.chunks(BATCH) {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for span in batch {
            writeln!(gz, "{}", span.to_json())?;
        }
        let body = gz.finish()?;
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let mut request = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .header("content-encoding", "gzip")
                .body(body.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => break,
                Ok(response) if response.status().as_u16() == 503 && attempt < ATTEMPTS => {}
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    bail!(
                        "{url} rejected a batch of {} spans: {status} {text}",
                        batch.len()
                    );
                }
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!("push to {url} failed, retrying: {e}")
                }
                Err(e) => return Err(e).with_context(|| format!("cannot push spans to {url}")),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    tracing::info!(spans = spans.len(), "pushed to {url}");
    Ok(())
}
