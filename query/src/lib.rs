//! Lumen query: the DataFusion session over the `spans` table (hot batches ∪ Parquet files from the
//! manifest) and the read-only SQL guard in front of it.

pub mod cancel;
pub mod explore;
pub mod guard;
pub mod table;
pub mod udf;
pub mod views;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::ObjectStore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use lumen_ingest::HotBuffer;
use lumen_storage::Manifest;

pub use guard::{GuardError, check_read_only};
pub use table::{STORE_URL, SpansTable, TimeBounds};

/// How long Lumen's own queries wait for a free slot before answering busy.
const INTERNAL_SLOT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("too many queries are running (limit {0}); retry shortly")]
    Busy(usize),
    #[error("query cancelled: it ran longer than the {0:?} limit")]
    Timeout(Duration),
    #[error("the SQL text is {0} bytes; the limit is {1}")]
    TooLong(usize, usize),
}

#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory shared by all running queries; operators that can spill do so past it.
    pub memory_limit_bytes: usize,
    /// A query (planning, execution and streaming of its result) is cancelled after this long.
    pub timeout: Duration,
    /// At most this many rows are returned; the answer says when it was cut.
    pub max_rows: usize,
    /// Queries running at once; one more is refused (HTTP 429) rather than queued.
    pub max_concurrent: usize,
    /// Longest SQL text accepted.
    pub max_sql_bytes: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            memory_limit_bytes: 4 << 30,
            timeout: Duration::from_secs(30),
            max_rows: 100_000,
            max_concurrent: 8,
            max_sql_bytes: 1 << 20,
        }
    }
}

/// A finished query.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// A running query's result, batch by batch, within the row cap and the deadline. Holds a concurrency
/// slot until it is dropped; dropping it cancels the query.
pub struct RowStream {
    schema: SchemaRef,
    inner: tokio::sync::mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
    _driver: AbortOnDrop,
    deadline: Instant,
    timeout: Duration,
    rows_left: usize,
    truncated: bool,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl RowStream {
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// True once the row cap cut the result short.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The next batch, `None` at the end (or after the row cap), an error on timeout or failure.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch, QueryError>> {
        if self.done {
            return None;
        }
        let next = match tokio::time::timeout_at(self.deadline.into(), self.inner.recv()).await {
            Ok(next) => next,
            Err(_) => {
                self.done = true;
                return Some(Err(QueryError::Timeout(self.timeout)));
            }
        };
        match next {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                // A cancellation raised by the deadline is reported as the timeout it is.
                if Instant::now() >= self.deadline {
                    return Some(Err(QueryError::Timeout(self.timeout)));
                }
                Some(Err(e.into()))
            }
            Some(Ok(batch)) if batch.num_rows() >= self.rows_left => {
                self.done = true;
                // Ask for one row past the cap so that exactly max_rows rows are not reported as cut.
                let cut = batch.num_rows() > self.rows_left || self.peek_more().await;
                self.truncated = cut;
                Some(Ok(batch.slice(0, self.rows_left)))
            }
            Some(Ok(batch)) => {
                self.rows_left -= batch.num_rows();
                Some(Ok(batch))
            }
        }
    }

    async fn peek_more(&mut self) -> bool {
        loop {
            match tokio::time::timeout_at(self.deadline.into(), self.inner.recv()).await {
                Ok(Some(Ok(b))) if b.num_rows() == 0 => continue,
                Ok(Some(Ok(_))) => return true,
                _ => return false,
            }
        }
    }

    /// Collects the rest.
    pub async fn collect(mut self) -> Result<QueryResult, QueryError> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch().await {
            batches.push(batch?);
        }
        Ok(QueryResult {
            schema: self.schema.clone(),
            batches,
            truncated: self.truncated,
        })
    }
}

/// Owns the query runtime; shuts it down without blocking (the engine may be dropped inside async code).
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts the task that drives a query when the consumer is gone.
struct AbortOnDrop(tokio::task::JoinHandle<()>, Arc<cancel::CancelToken>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.1.cancel();
        self.0.abort();
    }
}

pub struct QueryEngine {
    ctx: SessionContext,
    /// Where queries execute: separate from the runtime that serves HTTP and ingest.
    runtime: tokio::runtime::Handle,
    _runtime: QueryRuntime,
    options: QueryOptions,
    slots: Arc<Semaphore>,
}

impl QueryEngine {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        buffer: Arc<HotBuffer>,
        manifest: Arc<Manifest>,
        options: &QueryOptions,
    ) -> Result<Self, DataFusionError> {
        let mut config = SessionConfig::new().with_information_schema(true);
        {
            let parquet = &mut config.options_mut().execution.parquet;
            parquet.pushdown_filters = true;
            parquet.reorder_filters = true;
            parquet.enable_page_index = true;
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(options.memory_limit_bytes)))
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = Url::parse(STORE_URL).map_err(|e| DataFusionError::External(Box::new(e)))?;
        ctx.register_object_store(&url, store);
        ctx.register_table(
            "spans",
            Arc::new(SpansTable::new(buffer.clone(), manifest.clone())),
        )?;
        ctx.register_table(
            "spans_all",
            Arc::new(SpansTable::all_rows(buffer, manifest)),
        )?;
        ctx.register_udaf(udf::quantile_cont());
        views::register(&ctx)?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lumen-query")
            .enable_all()
            .build()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(QueryEngine {
            runtime: runtime.handle().clone(),
            _runtime: QueryRuntime(Some(runtime)),
            ctx,
            options: options.clone(),
            slots: Arc::new(Semaphore::new(options.max_concurrent)),
        })
    }

    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    /// Starts one read-only statement from a user: checked by the guard, counted against the concurrency
    /// limit, bounded by the deadline and the row cap.
    pub async fn query_stream(&self, sql: &str) -> Result<RowStream, QueryError> {
        if sql.len() > self.options.max_sql_bytes {
            return Err(QueryError::TooLong(sql.len(), self.options.max_sql_bytes));
        }
        check_read_only(sql)?;
        self.run(sql, false).await
    }

    /// Runs one read-only statement from a user to completion.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.query_stream(sql).await?.collect().await
    }

    /// Like `query`, but waits a little for a free slot instead of answering busy at once: for a user's
    /// SQL that the server runs on a schedule (alert rules), where nobody is there to retry.
    pub async fn query_queued(&self, sql: &str) -> Result<QueryResult, QueryError> {
        if sql.len() > self.options.max_sql_bytes {
            return Err(QueryError::TooLong(sql.len(), self.options.max_sql_bytes));
        }
        check_read_only(sql)?;
        self.run(sql, true).await?.collect().await
    }

    /// Runs SQL that Lumen itself built (explore endpoints): same time and concurrency limits, no guard
    /// needed, and no row cap (those queries bound their own results), so an answer is never cut silently.
    /// It waits a little for a slot rather than failing at once: one page of the UI asks several at a time.
    pub async fn internal(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let mut rows = self.run(sql, true).await?;
        rows.rows_left = usize::MAX;
        rows.collect().await
    }

    async fn run(&self, sql: &str, wait_for_slot: bool) -> Result<RowStream, QueryError> {
        let busy = || QueryError::Busy(self.options.max_concurrent);
        let permit = if wait_for_slot {
            tokio::time::timeout(INTERNAL_SLOT_WAIT, self.slots.clone().acquire_owned())
                .await
                .map_err(|_| busy())?
                .map_err(|_| busy())?
        } else {
            self.slots.clone().try_acquire_owned().map_err(|_| busy())?
        };
        let deadline = Instant::now() + self.options.timeout;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        // Planning and execution run on the query runtime, so a heavy query never stalls the HTTP
        // threads; batches come back through a small channel (back-pressure), and aborting the driver
        // task on drop cancels the query at its next yield point.
        let ctx = self.ctx.clone();
        let sql = sql.to_string();
        let token = cancel::CancelToken::new(deadline);
        let cancel_on_drop = token.clone();
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
        let (batch_tx, batch_rx) =
            tokio::sync::mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
        let driver = self.runtime.spawn(async move {
            let planned = async {
                let frame = ctx.sql_with_options(&sql, options).await?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let task = frame.task_ctx();
                let plan = cancel::make_cancellable(frame.create_physical_plan().await?, &token)?;
                let stream = datafusion::physical_plan::execute_stream(plan, Arc::new(task))?;
                Ok::<_, DataFusionError>((schema, stream))
            }
            .await;
            let mut stream = match planned {
                Ok((schema, stream)) => {
                    if schema_tx.send(Ok(schema)).is_err() {
                        return;
                    }
                    stream
                }
                Err(e) => {
                    let _ = schema_tx.send(Err(e));
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                if batch_tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let guard = AbortOnDrop(driver, cancel_on_drop);
        let schema = match tokio::time::timeout_at(deadline.into(), schema_rx).await {
            Err(_) => return Err(QueryError::Timeout(self.options.timeout)),
            Ok(Err(_)) => {
                return Err(QueryError::DataFusion(DataFusionError::Execution(
                    "query task ended".into(),
                )));
            }
            Ok(Ok(Err(_))) if Instant::now() >= deadline => {
                return Err(QueryError::Timeout(self.options.timeout));
            }
            Ok(Ok(planned)) => planned?,
        };
        Ok(RowStream {
            schema,
            inner: batch_rx,
            _driver: guard,
            deadline,
            timeout: self.options.timeout,
            rows_left: self.options.max_rows,
            truncated: false,
            done: false,
            _permit: permit,
        })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use lumen_ingest::{BodyFormat, IngestConfig, Ingester, parse_spans};
    use lumen_storage::{FlushPolicy, PersistStats, Persister, WriterConfig};
    use object_store::memory::InMemory;

    async fn count(engine: &QueryEngine, sql: &str) -> i64 {
        let result = engine.query(sql).await.unwrap();
        result.batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_and_cold_rows_are_each_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let manifest = Arc::new(Manifest::load(store.clone(), "w").await.unwrap());
        let buffer = Arc::new(HotBuffer::new(1000));
        let config = IngestConfig {
            wal_dir: dir.path().to_path_buf(),
            segment_bytes: 1 << 20,
            max_buffer_bytes: 1 << 30,
            max_wal_bytes: 1 << 30,
            dedup_window: 1000,
            policy: std::sync::Arc::new(lumen_ingest::CapturePolicy::default_redacted()),
        };
        let (ingester, _) = Ingester::open(config, buffer.clone(), 0).unwrap();
        let engine = QueryEngine::new(
            store.clone(),
            buffer.clone(),
            manifest.clone(),
            &QueryOptions::default(),
        )
        .unwrap();
        let body = |from: usize, to: usize, hour: u32| -> Vec<u8> {
            (from..to)
                .map(|i| format!("{{\"start_time\":\"2026-11-28T{hour:02}:00:{:02}Z\",\"span_id\":\"id{i}\"}}\n", i % 60))
                .collect::<String>()
                .into_bytes()
        };
        ingester
            .ingest(parse_spans(&body(0, 10, 8), BodyFormat::Ndjson).unwrap())
            .await
            .unwrap();
        assert_eq!(count(&engine, "SELECT count(*) FROM spans").await, 10);

        let mut persister = Persister::new(
            store.clone(),
            manifest.clone(),
            ingester.clone(),
            FlushPolicy {
                max_bytes: 1 << 30,
                max_age: std::time::Duration::from_secs(3600),
            },
            WriterConfig::default(),
            Arc::new(PersistStats::default()),
        );
        assert_eq!(persister.flush_once().await.unwrap(), 10);
        ingester
            .ingest(parse_spans(&body(10, 15, 9), BodyFormat::Ndjson).unwrap())
            .await
            .unwrap();
        assert_eq!(count(&engine, "SELECT count(*) FROM spans").await, 15);
        assert_eq!(
            count(&engine, "SELECT count(DISTINCT span_id) FROM spans").await,
            15
        );
        assert_eq!(
            count(
                &engine,
                "SELECT count(*) FROM spans WHERE start_time < '2026-11-28T09:00:00Z'"
            )
            .await,
            10
        );
        // Pruning: a window after the flushed hour plans no Parquet scan at all.
        let plan = engine
            .query("EXPLAIN SELECT count(*) FROM spans WHERE start_time >= '2026-11-28T09:00:00Z'")
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&plan.batches)
            .unwrap()
            .to_string();
        assert!(!text.contains(".parquet"), "{text}");
        let refused = engine.query("DROP TABLE spans").await.unwrap_err();
        assert!(matches!(refused, QueryError::Refused(_)));
    }
}
