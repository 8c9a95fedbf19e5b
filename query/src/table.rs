//! The `spans` table: a DataFusion `TableProvider` that unions the hot in-memory batches with the Parquet
//! files listed in the manifest. Time predicates on `start_time` prune files through the manifest's
//! min/max before DataFusion's own row-group and page pruning runs on what is left.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
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
use datafusion::physical_expr::expressions::{Column, IsNullExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
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
    /// `spans` leaves out rows with `duplicate_of` set (the second report of a call); `spans_all`
    /// shows every row.
    counted_only: bool,
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
            counted_only: true,
        }
    }

    /// The table of every stored row, duplicates included (`spans_all`).
    pub fn all_rows(buffer: Arc<HotBuffer>, manifest: Arc<Manifest>) -> Self {
        SpansTable {
            counted_only: false,
            ..SpansTable::new(buffer, manifest)
        }
    }

    /// A hot batch without its duplicate rows (cheap when it has none, the usual case).
    fn counted_rows(&self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let Some(duplicates) = batch.column_by_name(names::DUPLICATE_OF) else {
            return Ok(Some(batch));
        };
        if duplicates.null_count() == batch.num_rows() {
            return Ok(Some(batch));
        }
        let keep = arrow::compute::is_null(duplicates)?;
        let kept = arrow::compute::filter_record_batch(&batch, &keep)?;
        Ok((kept.num_rows() > 0).then_some(kept))
    }

    async fn file_scan(
        &self,
        state: &dyn Session,
        files: Vec<PartitionedFile>,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let source = Arc::new(ParquetSource::new(self.schema.clone()));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, source)
            .with_file_groups(vec![FileGroup::new(files)])
            .with_projection_indices(projection)?
            .with_limit(limit)
            .build();
        let format = ParquetFormat::new().with_options(state.table_options().parquet.clone());
        format.create_physical_plan(state, config).await
    }

    /// Files that hold duplicate rows: scanned with `duplicate_of` added, filtered on it, and projected
    /// back to what the query asked for.
    async fn counted_file_scan(
        &self,
        state: &dyn Session,
        files: Vec<PartitionedFile>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let duplicate_of = self.schema.index_of(names::DUPLICATE_OF)?;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut scanned = wanted.clone();
        if !scanned.contains(&duplicate_of) {
            scanned.push(duplicate_of);
        }
        let scan = self
            .file_scan(state, files, Some(scanned.clone()), None)
            .await?;
        let position = scanned
            .iter()
            .position(|i| *i == duplicate_of)
            .unwrap_or_default();
        let predicate = Arc::new(IsNullExpr::new(Arc::new(Column::new(
            names::DUPLICATE_OF,
            position,
        ))));
        let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, scan)?);
        let exprs: Vec<ProjectionExpr> = wanted
            .iter()
            .enumerate()
            .map(|(at, column)| {
                let name = self.schema.field(*column).name().clone();
                ProjectionExpr {
                    expr: Arc::new(Column::new(&name, at)),
                    alias: name,
                }
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
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
        let mut hot_batches = Vec::new();
        for b in hot.into_iter().filter(|b| b.seq > persisted) {
            if !self.counted_only {
                hot_batches.push(b.batch);
            } else if let Some(kept) = self.counted_rows(b.batch)? {
                hot_batches.push(kept);
            }
        }
        if !hot_batches.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[hot_batches],
                self.schema.clone(),
                projection.cloned(),
            )?);
        }

        let mut files: Vec<PartitionedFile> = Vec::new();
        let mut files_with_duplicates: Vec<PartitionedFile> = Vec::new();
        for f in manifest
            .files
            .values()
            .filter(|f| bounds.overlaps(f.min_time_ns, f.max_time_ns))
        {
            let mut stats = Statistics::new_unknown(&self.schema);
            stats.num_rows = Precision::Exact(f.rows as usize);
            stats.total_byte_size = Precision::Inexact(f.size as usize);
            let file =
                PartitionedFile::new(f.path.clone(), f.size).with_statistics(Arc::new(stats));
            if self.counted_only && f.duplicates > 0 {
                files_with_duplicates.push(file);
            } else {
                files.push(file);
            }
        }
        if !files.is_empty() {
            inputs.push(
                self.file_scan(state, files, projection.cloned(), limit)
                    .await?,
            );
        }
        if !files_with_duplicates.is_empty() {
            inputs.push(
                self.counted_file_scan(state, files_with_duplicates, projection)
                    .await?,
            );
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
