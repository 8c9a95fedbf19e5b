//! `lumen serve`: opens the store and manifest, replays the WAL, starts the flush loop and the HTTP server,
//! and shuts down cleanly on SIGINT/SIGTERM (a last flush; the WAL covers anything it cannot do).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::sync::watch;

use lumen_ingest::{HotBuffer, IngestConfig, Ingester};
use lumen_query::{QueryEngine, QueryOptions};
use lumen_storage::{
    FlushPolicy, Manifest, PersistStats, Persister, S3Options, WriterConfig, open_store,
};

use crate::config::ServeConfig;
use crate::http::{AppState, router};
use crate::metrics::Metrics;

/// A stable id for this data dir's WAL, so the manifest can say how far *this* WAL is persisted.
fn writer_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("writer-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = data_dir.join("writer-id.tmp");
            std::fs::write(&tmp, &id).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all())?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            std::fs::File::open(data_dir).and_then(|d| d.sync_all())?;
            Ok(id)
        }
    }
}

/// Loads the manifest, waiting (with a message) while the store cannot be reached: without it the WAL
/// cannot know which of its records are already in Parquet.
async fn load_manifest(
    store: Arc<dyn object_store::ObjectStore>,
    writer: &str,
    location: &str,
) -> anyhow::Result<Manifest> {
    let mut delay = Duration::from_millis(500);
    loop {
        match Manifest::load(store.clone(), writer).await {
            Ok(m) => return Ok(m),
            Err(lumen_storage::manifest::ManifestError::Store(e)) => {
                tracing::warn!(error = %e, %location, retry_in = ?delay, "cannot read the manifest yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e).context("reading the manifest"),
        }
    }
}

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    config.check_exposure()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let writer = writer_id(&config.data_dir)?;
    let s3 = S3Options {
        endpoint: config.s3_endpoint.clone(),
        allow_http: config.s3_allow_http,
    };
    let store = open_store(&config.storage, &s3)?;
    let manifest =
        Arc::new(load_manifest(store.clone(), &writer, &config.storage.to_string()).await?);
    let persisted = manifest.snapshot().persisted_seq(&writer);

    let buffer = Arc::new(HotBuffer::new(config.dedup_window));
    let ingest_config = IngestConfig {
        wal_dir: config.data_dir.join("wal"),
        segment_bytes: config.wal_segment,
        max_buffer_bytes: config.max_buffer,
        max_wal_bytes: config.max_wal,
        dedup_window: config.dedup_window,
        policy: config.capture.clone(),
    };
    let (ingester, replay) =
        Ingester::open(ingest_config, buffer.clone(), persisted).context("opening the WAL")?;
    tracing::info!(
        records = replay.records,
        skipped_persisted = replay.skipped_persisted,
        torn_tails = replay.torn_tails,
        rows = buffer.rows(),
        "WAL replayed"
    );

    let persist_stats = Arc::new(PersistStats::default());
    let persister = Persister::new(
        store.clone(),
        manifest.clone(),
        ingester.clone(),
        FlushPolicy {
            max_bytes: config.flush_size,
            max_age: config.flush_age,
        },
        WriterConfig {
            multipart_part_bytes: config.multipart_part,
            ..WriterConfig::default()
        },
        persist_stats.clone(),
    );
    match persister.recent_span_ids(config.dedup_window).await {
        Ok(ids) => {
            tracing::info!(
                span_ids = ids.len(),
                "remembered recently flushed span ids for idempotent retries"
            );
            buffer.remember_flushed_ids(ids.iter().map(|id| lumen_ingest::buffer::id_hash(id)));
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read recent span ids; retries of spans flushed before this start may be stored twice")
        }
    }
    let engine = QueryEngine::new(
        store.clone(),
        buffer.clone(),
        manifest.clone(),
        &QueryOptions {
            memory_limit_bytes: config.query_memory,
            timeout: config.query_timeout,
            max_rows: config.query_max_rows,
            max_concurrent: config.query_concurrency,
            ..QueryOptions::default()
        },
    )?;
    let metrics = Metrics::new(
        ingester.stats().clone(),
        persist_stats,
        buffer.clone(),
        manifest.clone(),
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let flush_task = tokio::spawn(persister.run(shutdown_rx.clone()));
    tokio::spawn(refresh_manifest(manifest.clone(), shutdown_rx.clone()));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    // Without TCP_NODELAY, a small answer waits ~40 ms for the client's delayed ACK (Nagle).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    tracing::info!(%address, storage = %config.storage, data_dir = %config.data_dir.display(), capture = %config.capture.default_mode(), "lumen is serving");
    // A line on stdout that scripts (and the end-to-end tests) can wait for.
    println!("lumen listening on http://{address}");

    let alerts = Arc::new(
        crate::alerts::Alerts::load(store.clone())
            .await
            .context("loading the alert rules")?,
    );
    let state = Arc::new(AppState {
        dashboards: crate::dashboards::Dashboards::new(store.clone()),
        alerts: alerts.clone(),
        config,
        ingester,
        engine,
        metrics,
    });
    tokio::spawn(alerts.clone().keep_reloading(shutdown_rx.clone()));
    if state.config.evaluate_alerts {
        tokio::spawn(alerts.run(state.clone(), shutdown_rx.clone()));
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
        })
        .await?;
    let _ = shutdown_tx.send(true);
    let _ = flush_task.await;
    Ok(())
}

/// Picks up files other servers on the same store committed.
async fn refresh_manifest(manifest: Arc<Manifest>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = manifest.refresh().await {
            tracing::debug!(error = %e, "manifest refresh failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
