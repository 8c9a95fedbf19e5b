//! Query results as HTTP bodies: JSON (columns with types + rows + elapsed), NDJSON, CSV, Arrow IPC
//! stream and Parquet. Chosen by `?format=` or else the `Accept` header.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    Json,
    Ndjson,
    Csv,
    Arrow,
    Parquet,
}

impl ResultFormat {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "json" => ResultFormat::Json,
            "ndjson" | "jsonl" => ResultFormat::Ndjson,
            "csv" => ResultFormat::Csv,
            "arrow" | "ipc" => ResultFormat::Arrow,
            "parquet" => ResultFormat::Parquet,
            _ => return None,
        })
    }

    /// The first media type in `Accept` that names a format; `None` for `*/*` or nothing known.
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|part| {
            let media = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            Some(match media.as_str() {
                "application/json" => ResultFormat::Json,
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    ResultFormat::Ndjson
                }
                "text/csv" => ResultFormat::Csv,
                "application/vnd.apache.arrow.stream" => ResultFormat::Arrow,
                "application/vnd.apache.parquet" | "application/x-parquet" => ResultFormat::Parquet,
                _ => return None,
            })
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json => "application/json",
            ResultFormat::Ndjson => "application/x-ndjson",
            ResultFormat::Csv => "text/csv; charset=utf-8",
            ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
            ResultFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding the result: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("encoding the result as Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("encoding the result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Gives repeated column names a suffix (`count`, `count_2`) so JSON objects and CSV headers stay unambiguous.
fn unique_names(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>), EncodeError> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut changed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let n = seen.entry(f.name().clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                f.as_ref().clone()
            } else {
                changed = true;
                f.as_ref().clone().with_name(format!("{}_{}", f.name(), n))
            }
        })
        .collect();
    if !changed {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let renamed: SchemaRef = Arc::new(Schema::new(fields));
    let batches = batches
        .iter()
        .map(|b| RecordBatch::try_new(renamed.clone(), b.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((renamed, batches))
}

/// Encodes a result batch by batch, so a large answer streams to the client instead of being built whole.
/// (Parquet is the exception: its footer needs every row group, so it is assembled in memory, bounded by
/// the row cap.)
pub struct ResultEncoder {
    format: ResultFormat,
    schema: SchemaRef,
    rows: usize,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
    parquet: Option<parquet::arrow::ArrowWriter<Vec<u8>>>,
}

impl ResultEncoder {
    /// The encoder and the bytes that open the body.
    pub fn new(format: ResultFormat, schema: &SchemaRef) -> Result<(Self, Vec<u8>), EncodeError> {
        let (schema, _) = unique_names(schema, &[])?;
        let mut encoder = ResultEncoder {
            format,
            schema: schema.clone(),
            rows: 0,
            arrow: None,
            parquet: None,
        };
        let mut preamble = Vec::new();
        match format {
            ResultFormat::Json => {
                let columns: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                    .collect();
                preamble.extend_from_slice(b"{\"columns\":");
                serde_json::to_writer(&mut preamble, &columns)?;
                preamble.extend_from_slice(b",\"rows\":[");
            }
            ResultFormat::Arrow => {
                let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
                preamble = std::mem::take(writer.get_mut());
                encoder.arrow = Some(writer);
            }
            ResultFormat::Parquet => {
                encoder.parquet = Some(parquet::arrow::ArrowWriter::try_new(
                    Vec::new(),
                    schema.clone(),
                    None,
                )?);
            }
            ResultFormat::Ndjson | ResultFormat::Csv => {}
        }
        Ok((encoder, preamble))
    }

    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        let first = self.rows == 0;
        self.rows += batch.num_rows();
        let mut out = Vec::new();
        match self.format {
            ResultFormat::Json => {
                let mut objects_json = Vec::new();
                {
                    let mut writer = WriterBuilder::new()
                        .with_explicit_nulls(true)
                        .build::<_, JsonArray>(&mut objects_json);
                    writer.write(&batch)?;
                    writer.finish()?;
                }
                if objects_json.is_empty() {
                    return Ok(out);
                }
                let objects: Vec<serde_json::Map<String, Value>> =
                    serde_json::from_slice(&objects_json)?;
                for (i, mut object) in objects.into_iter().enumerate() {
                    if !(first && i == 0) {
                        out.push(b',');
                    }
                    let row: Vec<Value> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| object.remove(f.name()).unwrap_or(Value::Null))
                        .collect();
                    serde_json::to_writer(&mut out, &row)?;
                }
            }
            ResultFormat::Ndjson => {
                let mut writer = WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(&mut out);
                writer.write(&batch)?;
                writer.finish()?;
            }
            ResultFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(first)
                    .build(&mut out);
                writer.write(&batch)?;
            }
            ResultFormat::Arrow => {
                if let Some(writer) = &mut self.arrow {
                    writer.write(&batch)?;
                    out = std::mem::take(writer.get_mut());
                }
            }
            ResultFormat::Parquet => {
                if let Some(writer) = &mut self.parquet {
                    writer.write(&batch)?;
                }
            }
        }
        Ok(out)
    }

    /// The bytes that close the body; `error` is reported inside JSON bodies when the query failed midway.
    pub fn finish(
        mut self,
        truncated: bool,
        elapsed_ms: f64,
        error: Option<&str>,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match self.format {
            ResultFormat::Json => {
                let mut tail = json!({"row_count": self.rows, "truncated": truncated, "elapsed_ms": elapsed_ms});
                if let Some(e) = error {
                    tail["error"] = json!(e);
                }
                let tail = serde_json::to_string(&tail)?;
                out.extend_from_slice(b"],");
                out.extend_from_slice(&tail.as_bytes()[1..]);
            }
            ResultFormat::Csv if self.rows == 0 => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                writer.write(&RecordBatch::new_empty(self.schema.clone()))?;
            }
            ResultFormat::Arrow => {
                if let Some(mut writer) = self.arrow.take() {
                    writer.finish()?;
                    out = writer.into_inner()?;
                }
            }
            ResultFormat::Parquet => {
                if let Some(writer) = self.parquet.take() {
                    out = writer.into_inner()?;
                }
            }
            ResultFormat::Ndjson | ResultFormat::Csv => {}
        }
        Ok(out)
    }
}

/// Encodes a whole result at once.
#[cfg(test)]
pub fn encode(
    format: ResultFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    elapsed_ms: f64,
) -> Result<Vec<u8>, EncodeError> {
    let (mut encoder, mut out) = ResultEncoder::new(format, schema)?;
    for b in batches {
        out.extend(encoder.batch(b)?);
    }
    out.extend(encoder.finish(false, elapsed_ms, None)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;

    fn sample() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("gpt-4o"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    #[test]
    fn json_has_columns_rows_and_nulls() {
        let (schema, batches) = sample();
        let body: Value =
            serde_json::from_slice(&encode(ResultFormat::Json, &schema, &batches, 1.5).unwrap())
                .unwrap();
        assert_eq!(body["rows"], json!([["gpt-4o", 1, 3], [null, 2, 4]]));
        assert_eq!(body["columns"][2]["name"], "n_2");
        assert_eq!(body["columns"][1]["type"], "Int64");
        assert_eq!(body["row_count"], 2);
    }

    #[test]
    fn other_formats_encode() {
        let (schema, batches) = sample();
        let csv =
            String::from_utf8(encode(ResultFormat::Csv, &schema, &batches, 0.0).unwrap()).unwrap();
        assert_eq!(csv, "model,n,n_2\ngpt-4o,1,3\n,2,4\n");
        let nd = String::from_utf8(encode(ResultFormat::Ndjson, &schema, &batches, 0.0).unwrap())
            .unwrap();
        assert_eq!(nd.lines().count(), 2);
        let ipc = encode(ResultFormat::Arrow, &schema, &batches, 0.0).unwrap();
        let read: Vec<RecordBatch> = arrow::ipc::reader::StreamReader::try_new(&ipc[..], None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read[0].num_rows(), 2);
        let pq = encode(ResultFormat::Parquet, &schema, &batches, 0.0).unwrap();
        assert_eq!(&pq[..4], b"PAR1");
        assert_eq!(
            ResultFormat::from_accept("text/html, text/csv;q=0.9"),
            Some(ResultFormat::Csv)
        );
        assert_eq!(ResultFormat::from_accept("*/*"), None);
    }
}
