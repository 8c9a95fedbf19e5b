//! `lumen-sensor run`: load and attach the BPF programs, then turn ring-buffer records into spans and
//! ship them. Threads: the capture loop (ring buffer → tracker → export queue), the attacher (finds TLS
//! libraries in new processes and probes them), and a small tokio runtime for export, metrics and signals.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lumen_decoder::{DecoderConfig, Span};
use tokio::sync::mpsc;

use crate::bpf_events::{self, Event, stat};
use crate::export::{ExportConfig, Exporter};
use crate::metrics::Metrics;
use crate::probes::{self, FileProbe, LoadOptions, Probes};
use crate::procs::Filters;
use crate::tracker::Tracker;

/// What the `redacted` capture mode does to a span before it leaves the node.
pub type Redact = Box<dyn Fn(&mut Span) + Send>;

pub struct RunOptions {
    pub export: ExportConfig,
    pub decoder: DecoderConfig,
    /// Applied to every span before it leaves the node (the `redacted` capture mode).
    pub redact: Option<Redact>,
    pub filters: Filters,
    pub capture_server: bool,
    pub ring_buffer_bytes: u32,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Stop after this long (tests, one-off recordings).
    pub duration: Option<Duration>,
}

/// Requests to the attacher thread.
enum Attach {
    /// Look at the files of this process now and a few times more while it loads its libraries.
    Process(u32),
}

pub fn run(options: RunOptions) -> Result<()> {
    let failed: Vec<_> = crate::preflight::run()
        .into_iter()
        .filter(|c| !c.ok)
        .collect();
    if !failed.is_empty() {
        let lines: Vec<_> = failed
            .iter()
            .map(|c| format!("  {}: {}", c.what, c.detail))
            .collect();
        bail!("this node cannot run the sensor:\n{}", lines.join("\n"));
    }
    let metrics = Arc::new(Metrics::default());
    let (mut probes, maps) = probes::load(&LoadOptions {
        ring_buffer_bytes: options.ring_buffer_bytes,
        capture_server: options.capture_server,
    })
    .context("loading the BPF programs")?;

    // TLS libraries installed on the node and in every running process, before the first event.
    let started = Instant::now();
    for lib in probes::installed_tls_libraries() {
        log_probe(&lib, probes.probe_file(&lib));
    }
    for pid in probes::all_pids() {
        probe_process(&mut probes, pid);
    }
    metrics.attached_links.set(probes.links as i64);
    metrics.attached_files.set(probes.attached_files() as i64);
    tracing::info!(
        links = probes.links,
        tls_files = probes.attached_files(),
        "attached in {:?}",
        started.elapsed()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let (span_tx, span_rx) = mpsc::channel::<Span>(100_000);
    let exporter = Exporter::new(options.export, metrics.clone())?;
    let export_task = runtime.spawn(exporter.run(span_rx));
    if let Some(addr) = options.metrics_listen {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
        tracing::info!("metrics on http://{addr}/metrics");
        runtime.spawn(serve_metrics(listener, metrics.clone()));
    }
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("cannot watch SIGTERM: {e}");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    }

    let (attach_tx, attach_rx) = std_mpsc::channel::<Attach>();
    let attacher = {
        let metrics = metrics.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("attacher".into())
            .spawn(move || attacher_loop(probes, attach_rx, metrics, stop))
            .context("cannot start the attacher thread")?
    };

    let result = capture_loop(
        maps,
        options.decoder,
        options.redact,
        options.filters,
        options.capture_server,
        &metrics,
        &span_tx,
        &attach_tx,
        &stop,
        options.duration,
    );
    stop.store(true, Ordering::SeqCst);
    drop(span_tx);
    drop(attach_tx);
    let _ = attacher.join();
    runtime.block_on(async {
        if tokio::time::timeout(Duration::from_secs(20), export_task)
            .await
            .is_err()
        {
            tracing::warn!("export did not finish in 20 s; what is left stays in the spool");
        }
    });
    tracing::info!(
        spans = metrics.spans.get(),
        exported = metrics.exported_spans.get(),
        spooled = metrics.spooled_spans.get(),
        dropped = metrics.dropped_spans.get(),
        gaps = metrics.gaps.get(),
        ring_drops = metrics.ring_drops.get(),
        "stopped"
    );
    result
}

/// Probes the executable and TLS libraries of process `pid` (files already looked at are skipped).
fn probe_process(probes: &mut Probes, pid: u32) {
    for file in probes::candidate_files(pid) {
        log_probe(&file, probes.probe_file(&file));
    }
}

fn log_probe(path: &std::path::Path, (outcome, new): (FileProbe, bool)) {
    if !new {
        return;
    }
    match outcome {
        FileProbe::Attached { library, probes } => {
            tracing::info!(file = %path.display(), library, probes, "TLS probes attached")
        }
        FileProbe::NoTls => tracing::debug!(file = %path.display(), "no TLS functions"),
        FileProbe::Failed(why) => tracing::warn!("cannot probe {}: {why}", path.display()),
    }
}

fn attacher_loop(
    mut probes: Probes,
    rx: std_mpsc::Receiver<Attach>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    // A new process maps its TLS library some time after exec (Python imports ssl lazily): look again.
    const RECHECKS: [Duration; 4] = [
        Duration::ZERO,
        Duration::from_millis(200),
        Duration::from_secs(1),
        Duration::from_secs(5),
    ];
    let mut due: BTreeMap<(Instant, u32), ()> = BTreeMap::new();
    let mut last_full = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Attach::Process(pid)) => {
                let now = Instant::now();
                for d in RECHECKS {
                    due.insert((now + d, pid), ());
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        while let Some((&(at, pid), ())) = due.first_key_value() {
            if at > now {
                break;
            }
            due.remove(&(at, pid));
            probe_process(&mut probes, pid);
        }
        if last_full.elapsed() > Duration::from_secs(10) {
            last_full = Instant::now();
            for pid in probes::all_pids() {
                probe_process(&mut probes, pid);
            }
        }
        metrics.attached_links.set(probes.links as i64);
        metrics.attached_files.set(probes.attached_files() as i64);
    }
}

#[allow(clippy::too_many_arguments)]
fn capture_loop(
    mut maps: probes::Maps,
    decoder: DecoderConfig,
    redact: Option<Redact>,
    filters: Filters,
    capture_server: bool,
    metrics: &Arc<Metrics>,
    spans: &mpsc::Sender<Span>,
    attach: &std_mpsc::Sender<Attach>,
    stop: &AtomicBool,
    duration: Option<Duration>,
) -> Result<()> {
    let mut tracker = Tracker::new(Arc::new(decoder), filters, capture_server, metrics.clone());
    let started = Instant::now();
    let mut last_sweep = Instant::now();
    let mut out: Vec<Span> = Vec::new();
    let fd = maps.events.as_raw_fd();
    tracing::info!("capturing");
    loop {
        let stopping =
            stop.load(Ordering::SeqCst) || duration.is_some_and(|d| started.elapsed() >= d);
        // Batched wake-ups: the BPF side wakes us only when a lot is waiting; otherwise poll every 10 ms.
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the ring buffer's fd, which `maps` keeps open.
        unsafe { libc::poll(&mut pfd, 1, 10) };
        while let Some(record) = maps.events.next() {
            metrics.events.inc();
            match bpf_events::parse(&record) {
                Ok(event) => {
                    if let Event::Exec { head, .. } = &event {
                        let _ = attach.send(Attach::Process(head.tgid));
                    }
                    tracker.event(event, &mut out);
                }
                Err(e) => {
                    metrics.event_errors.inc();
                    tracing::debug!("bad ring buffer record: {e}");
                }
            }
        }
        for pid in tracker.newly_excluded.drain(..) {
            let _ = maps.excluded.insert(pid, 1u8, 0);
        }
        if stopping || last_sweep.elapsed() > Duration::from_secs(1) {
            last_sweep = Instant::now();
            tracker.sweep(stopping, &mut out);
            let mut totals = [0u64; stat::COUNT as usize];
            for (i, total) in totals.iter_mut().enumerate() {
                if let Ok(values) = maps.stats.get(&(i as u32), 0) {
                    *total = values.iter().sum();
                }
            }
            metrics.sync_kernel(totals);
        }
        for mut span in out.drain(..) {
            if let Some(redact) = &redact {
                redact(&mut span);
            }
            if spans.try_send(span).is_err() {
                metrics.dropped_spans.inc();
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    metrics.render(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("metrics server stopped: {e}");
    }
}
