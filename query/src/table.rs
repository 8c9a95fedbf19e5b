//! The `spans` table: a DataFusion `TableProvider` that unions the hot in-memory batches with the Parquet
//! files listed in the manifest. Time predicates on `start_time` prune files through the manifest's
//! min/max before DataFusion's own row-group and page pruning runs on what is left.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{Result, ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use lumen_ingest::HotBuffer;
use lumen_ingest::schema::{names, span_schema};
use lumen_storage::Manifest;

/// The URL under which the span store is registered with DataFusion.
pub const STORE_URL: &str = "lumen://spans";

pub struct SpansTable {
    buffer: Arc<HotBuffer>,
    manifest: Arc<Manifest>,
    schema: SchemaRef,
}

impl fmt::Debug for SpansTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpansTable").finish_non_exhaustive()
    }
}

impl SpansTable {
    pub fn new(buffer: Arc<HotBuffer>, manifest: Arc<Manifest>) -> Self {
        SpansTable {
            buffer,
            manifest,
            schema: span_schema(),
        }
    }
}

/// Inclusive bounds on `start_time` (Unix ns) implied by a set of AND-ed filters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl TimeBounds {
    pub fn from_filters(filters: &[Expr]) -> Self {
        let mut bounds = TimeBounds::default();
        for filter in filters {
            bounds.add(filter);
        }
        bounds
    }

    fn add(&mut self, expr: &Expr) {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.add(left);
                self.add(right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, value) = match (is_start_time(left), is_start_time(right)) {
                    (true, false) => (*op, timestamp_ns(right)),
                    (false, true) => match op.swap() {
                        Some(swapped) => (swapped, timestamp_ns(left)),
                        None => return,
                    },
                    _ => return,
                };
                let Some(v) = value else { return };
                match op {
                    Operator::Gt | Operator::GtEq => self.raise_min(v),
                    Operator::Lt | Operator::LtEq => self.lower_max(v),
                    Operator::Eq => {
                        self.raise_min(v);
                        self.lower_max(v);
                    }
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_start_time(expr) => {
                if let Some(v) = timestamp_ns(low) {
                    self.raise_min(v);
                }
                if let Some(v) = timestamp_ns(high) {
                    self.lower_max(v);
                }
            }
            _ => {}
        }
    }

    fn raise_min(&mut self, v: i64) {
        self.min = Some(self.min.map_or(v, |m| m.max(v)));
    }

    fn lower_max(&mut self, v: i64) {
        self.max = Some(self.max.map_or(v, |m| m.min(v)));
    }

    /// Could a file whose start times span `[lo, hi]` hold a matching row?
    pub fn overlaps(&self, lo: i64, hi: i64) -> bool {
        self.min.is_none_or(|min| hi >= min) && self.max.is_none_or(|max| lo <= max)
    }
}

fn is_start_time(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == names::START_TIME)
}

/// A literal timestamp in nanoseconds (bounds are widened to whole units, so pruning stays conservative).
fn timestamp_ns(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for SpansTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used for pruning only; DataFusion still applies every filter to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Read the buffer before the manifest: a flush that commits in between moves rows from the
        // first to the second, and the persisted sequence number below drops them from the first.
        let hot = self.buffer.snapshot();
        let manifest = self.manifest.snapshot();
        let persisted = manifest.persisted_seq(self.manifest.writer_id());
        let bounds = TimeBounds::from_filters(filters);

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        let hot_batches: Vec<_> = hot
            .into_iter()
            .filter(|b| b.seq > persisted)
            .map(|b| b.batch)
            .collect();
        if !hot_batches.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[hot_batches],
                self.schema.clone(),
                projection.cloned(),
            )?);
        }

        let files: Vec<PartitionedFile> = manifest
            .files
            .values()
            .filter(|f| bounds.overlaps(f.min_time_ns, f.max_time_ns))
            .map(|f| {
                let mut stats = Statistics::new_unknown(&self.schema);
                stats.num_rows = Precision::Exact(f.rows as usize);
                stats.total_byte_size = Precision::Inexact(f.size as usize);
                PartitionedFile::new(f.path.clone(), f.size).with_statistics(Arc::new(stats))
            })
            .collect();
        if !files.is_empty() {
            let source = Arc::new(ParquetSource::new(self.schema.clone()));
            let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, source)
                .with_file_groups(vec![FileGroup::new(files)])
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            let format = ParquetFormat::new().with_options(state.table_options().parquet.clone());
            inputs.push(format.create_physical_plan(state, config).await?);
        }

        match inputs.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => self.schema.clone(),
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            _ => UnionExec::try_new(inputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn bounds_come_from_comparisons_and_between() {
        let b = TimeBounds::from_filters(&[
            col("start_time").gt_eq(ts(100)),
            ts(200).gt(col("start_time")),
        ]);
        assert_eq!(
            b,
            TimeBounds {
                min: Some(100),
                max: Some(200)
            }
        );
        assert!(b.overlaps(150, 300));
        assert!(!b.overlaps(201, 300));
        assert!(!b.overlaps(0, 99));
        let b = TimeBounds::from_filters(&[col("start_time").between(ts(5), ts(9))]);
        assert_eq!(
            b,
            TimeBounds {
                min: Some(5),
                max: Some(9)
            }
        );
        // Other columns and OR do not prune.
        let b = TimeBounds::from_filters(&[
            col("end_time").gt(ts(5)),
            col("start_time").gt(ts(1)).or(col("pid").eq(lit(1))),
        ]);
        assert_eq!(b, TimeBounds::default());
    }
}
