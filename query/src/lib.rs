//! Lumen query: the DataFusion session over the `spans` table (hot batches ∪ Parquet files from the
//! manifest) and the read-only SQL guard in front of it.

pub mod guard;
pub mod table;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use object_store::ObjectStore;
use url::Url;

use lumen_ingest::HotBuffer;
use lumen_storage::Manifest;

pub use guard::{GuardError, check_read_only};
pub use table::{STORE_URL, SpansTable, TimeBounds};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
}

#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory shared by all running queries; operators that can spill do so past it.
    pub memory_limit_bytes: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            memory_limit_bytes: 4 << 30,
        }
    }
}

/// A finished query.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

pub struct QueryEngine {
    ctx: SessionContext,
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
        ctx.register_table("spans", Arc::new(SpansTable::new(buffer, manifest)))?;
        Ok(QueryEngine { ctx })
    }

    /// Runs one read-only statement to completion.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, QueryError> {
        check_read_only(sql)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self.ctx.sql_with_options(sql, options).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(QueryResult { schema, batches })
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
