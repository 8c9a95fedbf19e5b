//! Spans → Parquet files in the hive layout: split by the UTC hour of `start_time`, sorted by time within
//! a file, zstd, page-level statistics (the page index), bloom filters on the id columns, and the sort
//! order declared in the footer. Files above the multipart threshold are uploaded in parts.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, UInt32Array};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use lumen_ingest::schema::{column_index, names, span_schema};

use crate::manifest::FileMeta;
use crate::paths;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("writing Parquet to {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
}

/// Parquet layout settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub zstd_level: i32,
    pub max_row_group_rows: usize,
    /// Files larger than this are uploaded with multipart upload, in parts of this size.
    pub multipart_part_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            zstd_level: 3,
            max_row_group_rows: 1 << 20,
            multipart_part_bytes: 10 << 20,
        }
    }
}

fn writer_properties(
    config: &WriterConfig,
    rows: usize,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let start = column_index(names::START_TIME).expect("start_time column") as i32;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(config.zstd_level)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(config.max_row_group_rows.max(1)))
        .set_created_by(format!("lumen {}", env!("CARGO_PKG_VERSION")))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: start,
            descending: false,
            nulls_first: false,
        }]));
    for time in [names::START_TIME, names::END_TIME] {
        let col = ColumnPath::from(time);
        builder = builder
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
    }
    for id in [names::TRACE_ID, names::SPAN_ID] {
        let col = ColumnPath::from(id);
        builder = builder
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_bloom_filter_enabled(col.clone(), true)
            .set_column_bloom_filter_max_ndv(col, rows.max(1) as u64);
    }
    Ok(builder.build())
}

/// Writes `batches` (span schema) as one sorted file per UTC hour, appending each finished file to
/// `written` (so that on an error the caller knows which objects exist and are not in the manifest).
pub async fn write_spans(
    store: &Arc<dyn ObjectStore>,
    batches: &[RecordBatch],
    config: &WriterConfig,
    written: &mut Vec<FileMeta>,
) -> Result<(), WriteError> {
    if batches.is_empty() {
        return Ok(());
    }
    let all = concat_batches(&span_schema(), batches)?;
    for (hour, rows) in split_by_hour(&all)? {
        let part = take_record_batch(&all, &rows)?;
        let sorted = sort_by_start_time(&part)?;
        written.push(write_file(store, paths::data_file(hour), &sorted, config).await?);
    }
    Ok(())
}

fn start_times(batch: &RecordBatch) -> Result<&arrow::array::TimestampNanosecondArray, WriteError> {
    batch
        .column_by_name(names::START_TIME)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| {
            WriteError::Arrow(arrow::error::ArrowError::SchemaError(
                "start_time column missing".into(),
            ))
        })
}

fn split_by_hour(batch: &RecordBatch) -> Result<BTreeMap<i64, UInt32Array>, WriteError> {
    let start = start_times(batch)?;
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, t) in start.values().iter().enumerate() {
        groups
            .entry(paths::hour_bucket(*t))
            .or_default()
            .push(i as u32);
    }
    Ok(groups
        .into_iter()
        .map(|(h, rows)| (h, UInt32Array::from(rows)))
        .collect())
}

fn sort_by_start_time(batch: &RecordBatch) -> Result<RecordBatch, WriteError> {
    let order = sort_to_indices(
        start_times(batch)?,
        Some(SortOptions {
            descending: false,
            nulls_first: false,
        }),
        None,
    )?;
    Ok(take_record_batch(batch, &order)?)
}

async fn write_file(
    store: &Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    batch: &RecordBatch,
    config: &WriterConfig,
) -> Result<FileMeta, WriteError> {
    let fail = |source| WriteError::Parquet {
        path: path.to_string(),
        source,
    };
    let start = start_times(batch)?;
    let (min_time_ns, max_time_ns) = (start.value(0), start.value(start.len() - 1));
    let props = writer_properties(config, batch.num_rows()).map_err(fail)?;
    let sink = BufWriter::with_capacity(store.clone(), path.clone(), config.multipart_part_bytes);
    let mut writer = AsyncArrowWriter::try_new(sink, batch.schema(), Some(props)).map_err(fail)?;
    writer.write(batch).await.map_err(fail)?;
    writer.finish().await.map_err(fail)?;
    Ok(FileMeta {
        path: path.to_string(),
        size: writer.bytes_written() as u64,
        rows: batch.num_rows() as u64,
        min_time_ns,
        max_time_ns,
        created_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
        duplicates: batch
            .column_by_name(lumen_ingest::schema::names::DUPLICATE_OF)
            .map(|c| (c.len() - c.null_count()) as u64)
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumen_ingest::{BodyFormat, parse_spans};
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::PageIndexPolicy;

    #[tokio::test]
    async fn files_are_split_by_hour_sorted_and_described() {
        let body = [
            "{\"start_time\":\"2026-11-28T09:10:00Z\",\"span_id\":\"c\"}",
            "{\"start_time\":\"2026-11-28T08:30:00Z\",\"span_id\":\"b\"}",
            "{\"start_time\":\"2026-11-28T08:05:00Z\",\"span_id\":\"a\"}",
        ]
        .join("\n");
        let batch = parse_spans(body.as_bytes(), BodyFormat::Ndjson).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut files = Vec::new();
        write_spans(&store, &[batch], &WriterConfig::default(), &mut files)
            .await
            .unwrap();
        assert_eq!(files.len(), 2);
        let eight = &files[0];
        assert!(
            eight.path.starts_with("spans/date=2026-11-28/hour=08/"),
            "{}",
            eight.path
        );
        assert_eq!(eight.rows, 2);
        assert!(eight.min_time_ns < eight.max_time_ns);

        let bytes = store
            .get(&eight.path.as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, eight.size);
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).unwrap();
        let meta = reader.metadata().clone();
        assert!(meta.column_index().is_some(), "page index written");
        let rows: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        let ids = rows[0]
            .column_by_name("span_id")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(
            (ids.value(0), ids.value(1)),
            ("a", "b"),
            "sorted by start_time"
        );
    }
}
