//! `lumen sql`: runs one query against a server and prints the answer as a table, CSV or JSON.

use anyhow::{Context, bail};
use arrow::record_batch::RecordBatch;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PrintFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT request_model, count(*) FROM spans GROUP BY 1".
    pub query: String,
    /// Server to ask.
    #[arg(long, env = "LUMEN_SERVER", default_value = "http://127.0.0.1:4318")]
    pub server: String,
    /// Bearer token for /v1/sql (the server's --query-token).
    #[arg(long, env = "LUMEN_QUERY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PrintFormat,
}

pub async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let wire = match args.format {
        PrintFormat::Table => "arrow",
        PrintFormat::Csv => "csv",
        PrintFormat::Json => "json",
    };
    let url = format!("{}/v1/sql", args.server.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({"sql": args.query, "format": wire}));
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("{status}: {message}");
    }
    match args.format {
        PrintFormat::Table => {
            let reader = arrow::ipc::reader::StreamReader::try_new(&body[..], None)
                .context("decoding Arrow IPC")?;
            let batches: Vec<RecordBatch> = reader
                .collect::<Result<_, _>>()
                .context("decoding Arrow IPC")?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
            println!("({rows} row{})", if rows == 1 { "" } else { "s" });
        }
        PrintFormat::Csv | PrintFormat::Json => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&body)?;
            if !body.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}
