//! `lumen serve` configuration: command-line flags, `LUMEN_*` environment variables and an optional TOML
//! file, in that order of precedence, resolved into one `ServeConfig` with documented defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use std::sync::Arc;

use lumen_ingest::{CaptureMode, CapturePolicy, CaptureRule};
use lumen_redact::RedactConfig;
use lumen_storage::StorageLocation;

/// Flags of `lumen serve`. Every flag also reads `LUMEN_<NAME>` and the key of the same name (with `_`)
/// in the `--config` file.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flag names with `_`, e.g. `data_dir`).
    #[arg(long, env = "LUMEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on. [default: 127.0.0.1:4318]
    #[arg(long, env = "LUMEN_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Directory for the WAL and, unless --storage says otherwise, the Parquet files. [default: ./lumen-data]
    #[arg(long, env = "LUMEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where Parquet files and the manifest go: a directory, or s3://bucket/prefix (region and credentials
    /// from the standard AWS environment / credential chain). [default: the data dir]
    #[arg(long, env = "LUMEN_STORAGE", value_name = "LOCATION")]
    pub storage: Option<String>,

    /// Endpoint of an S3-compatible server (e.g. http://127.0.0.1:9000).
    #[arg(long, env = "LUMEN_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Allow plain http:// to the S3 endpoint.
    #[arg(long, env = "LUMEN_S3_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub s3_allow_http: Option<bool>,

    /// Bearer token required by POST /v1/spans.
    #[arg(
        long,
        env = "LUMEN_INGEST_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub ingest_token: Option<String>,

    /// Bearer token required by /v1/sql.
    #[arg(
        long,
        env = "LUMEN_QUERY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub query_token: Option<String>,

    /// Listen on a non-loopback address without both tokens set.
    #[arg(long, env = "LUMEN_ALLOW_UNAUTHENTICATED", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated: Option<bool>,

    /// Largest request body accepted, compressed or not (larger: 413). [default: 64MiB]
    #[arg(long, env = "LUMEN_MAX_BODY", value_name = "BYTES")]
    pub max_body: Option<String>,

    /// Flush hot spans to Parquet when they take this much memory. [default: 64MiB]
    #[arg(long, env = "LUMEN_FLUSH_SIZE", value_name = "BYTES")]
    pub flush_size: Option<String>,

    /// Flush hot spans to Parquet when the oldest is this old. [default: 10s]
    #[arg(long, env = "LUMEN_FLUSH_AGE", value_name = "DURATION")]
    pub flush_age: Option<String>,

    /// Unflushed spans in memory above which ingest answers 503. [default: 1GiB]
    #[arg(long, env = "LUMEN_MAX_BUFFER", value_name = "BYTES")]
    pub max_buffer: Option<String>,

    /// WAL size on disk above which ingest answers 503 (e.g. while storage is down). [default: 4GiB]
    #[arg(long, env = "LUMEN_MAX_WAL", value_name = "BYTES")]
    pub max_wal: Option<String>,

    /// WAL segment size. [default: 64MiB]
    #[arg(long, env = "LUMEN_WAL_SEGMENT", value_name = "BYTES")]
    pub wal_segment: Option<String>,

    /// How many already-flushed span ids are remembered to make retried requests idempotent. [default: 1000000]
    #[arg(long, env = "LUMEN_DEDUP_WINDOW", value_name = "SPANS")]
    pub dedup_window: Option<usize>,

    /// Parquet files larger than this are uploaded in parts of this size (S3 needs >= 5MiB). [default: 10MiB]
    #[arg(long, env = "LUMEN_MULTIPART_PART", value_name = "BYTES")]
    pub multipart_part: Option<String>,

    /// Memory shared by running queries; larger sorts and aggregations spill. [default: 4GiB]
    #[arg(long, env = "LUMEN_QUERY_MEMORY", value_name = "BYTES")]
    pub query_memory: Option<String>,

    /// A query is cancelled after this long. [default: 30s]
    #[arg(long, env = "LUMEN_QUERY_TIMEOUT", value_name = "DURATION")]
    pub query_timeout: Option<String>,

    /// Most rows one query returns; the JSON answer says `"truncated": true` past it. [default: 100000]
    #[arg(long, env = "LUMEN_QUERY_MAX_ROWS", value_name = "ROWS")]
    pub query_max_rows: Option<usize>,

    /// Queries running at once; more are answered 429. [default: 8]
    #[arg(long, env = "LUMEN_QUERY_CONCURRENCY", value_name = "N")]
    pub query_concurrency: Option<usize>,

    /// A request body must arrive within this long (slow senders get 408). [default: 30s]
    #[arg(long, env = "LUMEN_BODY_TIMEOUT", value_name = "DURATION")]
    pub body_timeout: Option<String>,

    /// Content the server stores, enforced before the WAL: full, redacted (sensitive values become
    /// placeholders) or metadata (no prompts or completions). Per-provider/service overrides go in the
    /// config file as [[capture_rules]]. [default: redacted]
    #[arg(long, env = "LUMEN_CAPTURE", value_name = "MODE")]
    pub capture: Option<String>,

    /// TOML file with the redaction settings (custom patterns, JSON key keep/drop lists; see
    /// redact/README.md). [default: built-in rules]
    #[arg(long, env = "LUMEN_REDACT_CONFIG", value_name = "FILE")]
    pub redact_config: Option<PathBuf>,

    /// Serve the web UI's files from this directory instead of the copy built into the binary (for
    /// working on the UI without rebuilding). [default: built in]
    #[arg(long, env = "LUMEN_UI_DIR", value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Evaluate alert rules on this server. With several servers on one store, let one evaluate.
    /// [default: true]
    #[arg(long, env = "LUMEN_EVALUATE_ALERTS", num_args = 0..=1, default_missing_value = "true")]
    pub evaluate_alerts: Option<bool>,
}

/// The same settings as they may appear in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    storage: Option<String>,
    s3_endpoint: Option<String>,
    s3_allow_http: Option<bool>,
    ingest_token: Option<String>,
    query_token: Option<String>,
    allow_unauthenticated: Option<bool>,
    max_body: Option<toml::Value>,
    flush_size: Option<toml::Value>,
    flush_age: Option<String>,
    max_buffer: Option<toml::Value>,
    max_wal: Option<toml::Value>,
    wal_segment: Option<toml::Value>,
    dedup_window: Option<usize>,
    multipart_part: Option<toml::Value>,
    query_memory: Option<toml::Value>,
    query_timeout: Option<String>,
    query_max_rows: Option<usize>,
    query_concurrency: Option<usize>,
    body_timeout: Option<String>,
    capture: Option<String>,
    #[serde(default)]
    capture_rules: Vec<CaptureRule>,
    redact_config: Option<PathBuf>,
    /// The redaction settings inline, instead of a separate file.
    redact: Option<RedactConfig>,
    ui_dir: Option<PathBuf>,
    evaluate_alerts: Option<bool>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub storage: StorageLocation,
    pub s3_endpoint: Option<String>,
    pub s3_allow_http: bool,
    pub ingest_token: Option<String>,
    pub query_token: Option<String>,
    pub allow_unauthenticated: bool,
    pub max_body: usize,
    pub flush_size: usize,
    pub flush_age: Duration,
    pub max_buffer: u64,
    pub max_wal: u64,
    pub wal_segment: u64,
    pub dedup_window: usize,
    pub multipart_part: usize,
    pub query_memory: usize,
    pub query_timeout: Duration,
    pub query_max_rows: usize,
    pub query_concurrency: usize,
    pub body_timeout: Duration,
    pub capture: Arc<CapturePolicy>,
    pub ui_dir: Option<PathBuf>,
    pub evaluate_alerts: bool,
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Parses `123`, `64MiB`, `64MB` (binary units throughout), `1GiB`, `512k`.
pub fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a size like 64MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => 1 << 40,
        other => bail!("{text:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("{text:?} is too large"))
}

fn toml_bytes(value: &toml::Value, key: &str) -> anyhow::Result<u64> {
    match value {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_bytes(s).with_context(|| format!("config key {key}")),
        other => {
            bail!("config key {key}: expected a size like \"64MiB\" or an integer, found {other}")
        }
    }
}

fn pick_bytes(
    cli: &Option<String>,
    file: &Option<toml::Value>,
    key: &str,
    default: u64,
) -> anyhow::Result<u64> {
    match (cli, file) {
        (Some(s), _) => parse_bytes(s).with_context(|| format!("--{}", key.replace('_', "-"))),
        (None, Some(v)) => toml_bytes(v, key),
        (None, None) => Ok(default),
    }
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./lumen-data"));
        let storage = match self.storage.or(file.storage) {
            Some(text) => StorageLocation::parse(&text)?,
            None => StorageLocation::Local(data_dir.clone()),
        };
        let duration = |cli: Option<String>, file: Option<String>, name: &str, default: u64| {
            match cli.or(file) {
                Some(text) => humantime::parse_duration(&text)
                    .with_context(|| format!("--{name}: {text:?} is not a duration like 10s")),
                None => Ok(Duration::from_secs(default)),
            }
        };
        let flush_age = duration(self.flush_age, file.flush_age, "flush-age", 10)?;
        let query_timeout = duration(self.query_timeout, file.query_timeout, "query-timeout", 30)?;
        let body_timeout = duration(self.body_timeout, file.body_timeout, "body-timeout", 30)?;
        let query_concurrency = self
            .query_concurrency
            .or(file.query_concurrency)
            .unwrap_or(8);
        if query_concurrency == 0 {
            bail!("--query-concurrency must be at least 1");
        }
        let multipart_part = pick_bytes(
            &self.multipart_part,
            &file.multipart_part,
            "multipart_part",
            10 * MIB,
        )?;
        if multipart_part < 5 * MIB {
            bail!("--multipart-part must be at least 5MiB (the S3 minimum part size)");
        }
        let capture_mode = match self.capture.or(file.capture) {
            Some(text) => text
                .parse::<CaptureMode>()
                .map_err(|e| anyhow::anyhow!("--capture: {e}"))?,
            None => CaptureMode::Redacted,
        };
        let redact = match (self.redact_config.or(file.redact_config), file.redact) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading the redaction config {}", path.display()))?;
                toml::from_str::<RedactConfig>(&text)
                    .with_context(|| format!("redaction config {}", path.display()))?
            }
            (None, Some(inline)) => inline,
            (None, None) => RedactConfig::default(),
        };
        let capture = Arc::new(
            CapturePolicy::new(capture_mode, file.capture_rules, &redact)
                .context("capture policy")?,
        );
        Ok(ServeConfig {
            capture,
            ui_dir: self.ui_dir.or(file.ui_dir),
            evaluate_alerts: self
                .evaluate_alerts
                .or(file.evaluate_alerts)
                .unwrap_or(true),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4318))),
            data_dir,
            storage,
            s3_endpoint: self.s3_endpoint.or(file.s3_endpoint),
            s3_allow_http: self.s3_allow_http.or(file.s3_allow_http).unwrap_or(false),
            ingest_token: self
                .ingest_token
                .or(file.ingest_token)
                .filter(|t| !t.is_empty()),
            query_token: self
                .query_token
                .or(file.query_token)
                .filter(|t| !t.is_empty()),
            allow_unauthenticated: self
                .allow_unauthenticated
                .or(file.allow_unauthenticated)
                .unwrap_or(false),
            max_body: pick_bytes(&self.max_body, &file.max_body, "max_body", 64 * MIB)? as usize,
            flush_size: pick_bytes(&self.flush_size, &file.flush_size, "flush_size", 64 * MIB)?
                as usize,
            flush_age,
            max_buffer: pick_bytes(&self.max_buffer, &file.max_buffer, "max_buffer", GIB)?,
            max_wal: pick_bytes(&self.max_wal, &file.max_wal, "max_wal", 4 * GIB)?,
            wal_segment: pick_bytes(
                &self.wal_segment,
                &file.wal_segment,
                "wal_segment",
                64 * MIB,
            )?,
            dedup_window: self.dedup_window.or(file.dedup_window).unwrap_or(1_000_000),
            multipart_part: multipart_part as usize,
            query_memory: pick_bytes(
                &self.query_memory,
                &file.query_memory,
                "query_memory",
                4 * GIB,
            )? as usize,
            query_timeout,
            query_max_rows: self
                .query_max_rows
                .or(file.query_max_rows)
                .unwrap_or(100_000)
                .max(1),
            query_concurrency,
            body_timeout,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

impl ServeConfig {
    /// Refuses an unauthenticated server on a non-loopback address unless explicitly allowed.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        let open = self.ingest_token.is_none() || self.query_token.is_none();
        if open && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            bail!(
                "refusing to listen on {} without --ingest-token and --query-token: anyone who can reach it could \
                 write and read spans. Set both tokens, or pass --allow-unauthenticated if the network is private.",
                self.listen
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("123").unwrap(), 123);
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
    }

    #[test]
    fn file_fills_what_flags_leave_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lumen.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\nflush_size = \"1MiB\"\nflush_age = \"2s\"\nmax_body = 1000\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            max_body: Some("2KiB".into()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.storage, StorageLocation::Local("/tmp/x".into()));
        assert_eq!(c.flush_size, 1 << 20);
        assert_eq!(c.flush_age, Duration::from_secs(2));
        assert_eq!(c.max_body, 2048, "flags win over the file");
        assert_eq!(c.listen.port(), 4318);

        std::fs::write(&path, "datadir = 1\n").unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{err:#}").contains("datadir"), "{err:#}");
    }

    #[test]
    fn open_server_must_stay_on_loopback() {
        let mut c = ServeArgs::default().resolve().unwrap();
        assert!(c.check_exposure().is_ok());
        c.listen = "0.0.0.0:4318".parse().unwrap();
        assert!(c.check_exposure().is_err());
        c.ingest_token = Some("a".into());
        c.query_token = Some("b".into());
        assert!(c.check_exposure().is_ok());
    }
}
