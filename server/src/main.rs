//! The `lumen` binary: `lumen serve` (the backend) and `lumen sql` (a query client).

mod alerts;
mod config;
mod dashboards;
mod demo;
mod demo_llm;
mod explore;
mod format;
mod http;
mod metrics;
mod objects;
mod otlp;
mod serve;
mod sql_cmd;
mod ui;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Lumen: LLM observability in your own cloud account.
#[derive(Debug, Parser)]
#[command(name = "lumen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the backend: ingest spans over HTTP, store them as Parquet, answer SQL.
    Serve(Box<config::ServeArgs>),
    /// Run one SQL query against a server and print the result.
    Sql(sql_cmd::SqlArgs),
    /// Start a server with a realistic generated dataset and a trickle of live spans, and print the web
    /// UI's address: a populated Lumen in one command.
    Demo(demo::DemoArgs),
    /// The demo's client: calls a provider like an application would (started by `lumen demo`).
    #[command(hide = true)]
    DemoLoad(demo_llm::LoadArgs),
    /// Print the span contract (the columns of the `spans` table) as Markdown.
    Schema,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LUMEN_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            runtime.block_on(serve::run(config))
        }
        Command::Sql(args) => runtime.block_on(sql_cmd::run(args)),
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::DemoLoad(args) => runtime.block_on(demo_llm::load(args)),
        Command::Schema => {
            print!("{}", lumen_ingest::schema::markdown_table());
            Ok(())
        }
    }
}
