//! Request bodies (a JSON array or NDJSON of spans) → one validated Arrow `RecordBatch`.
//!
//! Validation is all-or-nothing: a request with any bad line produces only errors (each naming the line
//! and the field) and no rows, so nothing from a bad request is ever half-written.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::record_batch::RecordBatch;
use chrono::DateTime;
use serde_json::{Map, Value};

use crate::schema::{COLUMNS, Kind, column_index, names, span_schema};

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `[` first → JSON array, otherwise NDJSON (so a single object also works).
    Auto,
    /// One JSON object per line.
    Ndjson,
}

/// One problem in one line of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 1-based line of the body where the span (or the syntax error) starts.
    pub line: usize,
    /// The offending field, when the problem is about one field.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: {}: {}", self.line, field, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Why a body was rejected: the first `MAX_REPORTED_ERRORS` problems and how many there were in all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}", first_error(.errors), more_errors(*.total))]
pub struct ParseError {
    pub errors: Vec<LineError>,
    pub total: usize,
}

fn first_error(errors: &[LineError]) -> String {
    errors
        .first()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "invalid body".to_string())
}

fn more_errors(total: usize) -> String {
    match total.saturating_sub(1) {
        0 => String::new(),
        n => format!(" (and {n} more problems)"),
    }
}

/// Most spans one request may carry (memory per request stays bounded whatever the body size).
pub const MAX_SPANS_PER_REQUEST: usize = 100_000;

/// At most this many problems are reported per request (all lines are still checked).
pub const MAX_REPORTED_ERRORS: usize = 20;

/// Parses and validates a body into one batch in the span schema.
pub fn parse_spans(body: &[u8], format: BodyFormat) -> Result<RecordBatch, ParseError> {
    let mut sink = RowSink::default();
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let is_array = format == BodyFormat::Auto && first.is_some_and(|i| body[i] == b'[');
    if is_array {
        parse_array(body, &mut sink);
    } else {
        parse_ndjson(body, &mut sink);
    }
    sink.finish()
}

fn parse_ndjson(body: &[u8], sink: &mut RowSink) {
    for (index, raw) in body.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(value) => sink.push(line, value),
            Err(e) => sink.error(line, None, format!("invalid JSON: {e}")),
        }
    }
}

/// Walks the top-level array element by element so every span knows the line it starts on.
fn parse_array(body: &[u8], sink: &mut RowSink) {
    // Positions only move forward, so lines are counted incrementally (linear in the body size).
    let counted = std::cell::Cell::new((0usize, 1usize));
    let line_of = |offset: usize| {
        let offset = offset.min(body.len());
        let (from, line) = counted.get();
        let (from, line) = if offset >= from { (from, line) } else { (0, 1) };
        let line = line + body[from..offset].iter().filter(|b| **b == b'\n').count();
        counted.set((offset, line));
        line
    };
    let skip_ws = |mut i: usize| {
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    // The caller checked that the first non-whitespace byte is '['.
    let mut pos = skip_ws(0) + 1;
    pos = skip_ws(pos);
    if body.get(pos) == Some(&b']') {
        return trailing(body, skip_ws(pos + 1), sink, line_of(pos));
    }
    loop {
        pos = skip_ws(pos);
        let start_line = line_of(pos);
        let mut stream = serde_json::Deserializer::from_slice(&body[pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                pos += stream.byte_offset();
                sink.push(start_line, value);
            }
            Some(Err(e)) => {
                return sink.error(
                    line_of(pos) + e.line().saturating_sub(1),
                    None,
                    format!("invalid JSON: {e}"),
                );
            }
            None => return sink.error(start_line, None, "invalid JSON: unterminated array".into()),
        }
        pos = skip_ws(pos);
        match body.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => return trailing(body, skip_ws(pos + 1), sink, line_of(pos)),
            Some(other) => {
                let msg = format!(
                    "invalid JSON: expected ',' or ']' after a span, found {:?}",
                    *other as char
                );
                return sink.error(line_of(pos), None, msg);
            }
            None => {
                return sink.error(
                    line_of(pos),
                    None,
                    "invalid JSON: unterminated array".into(),
                );
            }
        }
    }
}

fn trailing(body: &[u8], pos: usize, sink: &mut RowSink, line: usize) {
    if pos < body.len() {
        sink.error(
            line,
            None,
            "invalid JSON: trailing characters after the array".into(),
        );
    }
}

/// A validated value of one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

#[derive(Default)]
struct RowSink {
    rows: Vec<Vec<Cell>>,
    errors: Vec<LineError>,
    total_errors: usize,
    /// Spans checked after the first error (not kept, but counted against the per-request cap).
    seen_invalid: usize,
    over_limit: bool,
}

impl RowSink {
    fn error(&mut self, line: usize, field: Option<&str>, message: String) {
        self.total_errors += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(LineError {
                line,
                field: field.map(str::to_string),
                message,
            });
        }
    }

    fn push(&mut self, line: usize, value: Value) {
        if self.rows.len() + self.seen_invalid >= MAX_SPANS_PER_REQUEST {
            if !self.over_limit {
                self.over_limit = true;
                let msg = format!(
                    "more than {MAX_SPANS_PER_REQUEST} spans in one request; split the body"
                );
                self.error(line, None, msg);
            }
            return;
        }
        let Value::Object(object) = value else {
            return self.error(
                line,
                None,
                format!(
                    "expected a JSON object (one span), found {}",
                    describe(&value)
                ),
            );
        };
        match validate_row(object) {
            Ok(row) if self.total_errors == 0 => self.rows.push(row),
            Ok(_) => self.seen_invalid += 1,
            Err(field_errors) => {
                for (field, message) in field_errors {
                    self.error(line, Some(&field), message);
                }
            }
        }
    }

    fn finish(self) -> Result<RecordBatch, ParseError> {
        if self.total_errors > 0 {
            return Err(ParseError {
                errors: self.errors,
                total: self.total_errors,
            });
        }
        if self.rows.is_empty() {
            return Err(ParseError {
                errors: vec![LineError {
                    line: 1,
                    field: None,
                    message: "the body holds no spans".into(),
                }],
                total: 1,
            });
        }
        Ok(build_batch(self.rows))
    }
}

/// A short description of a JSON value for messages: strings and numbers quoted as given, short.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

type FieldErrors = Vec<(String, String)>;

fn validate_row(mut object: Map<String, Value>) -> Result<Vec<Cell>, FieldErrors> {
    let mut errors: FieldErrors = Vec::new();
    let mut row: Vec<Cell> = Vec::with_capacity(COLUMNS.len());
    for column in COLUMNS {
        let value = object.remove(column.name).unwrap_or(Value::Null);
        match convert(column.kind, value) {
            Ok(cell) => row.push(cell),
            Err(message) => {
                errors.push((column.name.to_string(), message));
                row.push(Cell::Null);
            }
        }
    }
    // Whatever is left is not part of the contract: keep it in `attributes` rather than drop it.
    if !object.is_empty() {
        let attributes = column_index(names::ATTRIBUTES).expect("attributes column exists");
        if let Cell::Null = row[attributes] {
            row[attributes] = Cell::Map(Vec::new());
        }
        if let Cell::Map(entries) = &mut row[attributes] {
            for (key, value) in object {
                if !entries.iter().any(|(k, _)| *k == key) {
                    entries.push((key, scalar_text(value)));
                }
            }
            entries.sort();
        }
    }
    check_rules(&mut row, &mut errors);
    if errors.is_empty() {
        Ok(row)
    } else {
        Err(errors)
    }
}

fn scalar_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn convert(kind: Kind, value: Value) -> Result<Cell, String> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let wrong = |value: &Value| format!("expected {}, found {}", kind.expected(), describe(value));
    let cell = match kind {
        Kind::Str => match value {
            Value::String(s) => Cell::Str(s),
            other => return Err(wrong(&other)),
        },
        Kind::JsonText => match value {
            Value::String(s) => Cell::Str(s),
            other => Cell::Str(other.to_string()),
        },
        Kind::Timestamp => Cell::I64(parse_timestamp(&value).ok_or_else(|| wrong(&value))?),
        Kind::F64 => match value.as_f64() {
            Some(f) if f.is_finite() && value.is_number() => Cell::F64(f),
            _ => return Err(wrong(&value)),
        },
        Kind::I64 => Cell::I64(value.as_i64().ok_or_else(|| wrong(&value))?),
        Kind::U16 | Kind::U32 | Kind::U64 => {
            let n = value.as_u64().ok_or_else(|| wrong(&value))?;
            let max = match kind {
                Kind::U16 => u16::MAX as u64,
                Kind::U32 => u32::MAX as u64,
                _ => u64::MAX,
            };
            if n > max {
                return Err(format!("{n} is out of range (max {max})"));
            }
            Cell::U64(n)
        }
        Kind::Bool => Cell::Bool(value.as_bool().ok_or_else(|| wrong(&value))?),
        Kind::StrList => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(format!(
                                "expected array of strings, found an item {}",
                                describe(&other)
                            ));
                        }
                    }
                }
                Cell::List(out)
            }
            other => return Err(wrong(&other)),
        },
        Kind::StrMap => match value {
            Value::Object(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (key, value) in map {
                    if value.is_object() || value.is_array() {
                        return Err(format!(
                            "expected object of scalars, found {} at key {key:?}",
                            describe(&value)
                        ));
                    }
                    if !value.is_null() {
                        entries.push((key, scalar_text(value)));
                    }
                }
                Cell::Map(entries)
            }
            other => return Err(wrong(&other)),
        },
    };
    Ok(cell)
}

/// Latest accepted timestamp (2200-01-01T00:00:00Z): far from the i64 nanosecond limit, so time
/// arithmetic downstream (durations, hour partitions) cannot overflow.
const MAX_TIMESTAMP_NS: i64 = 7_258_118_400_000_000_000;

/// RFC 3339 text or integer Unix nanoseconds, between 1970 and 2200.
fn parse_timestamp(value: &Value) -> Option<i64> {
    let ns = match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()?
            .timestamp_nanos_opt()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (0..MAX_TIMESTAMP_NS).contains(&ns).then_some(ns)
}

fn index(name: &str) -> usize {
    column_index(name).expect("column of the span contract")
}

/// Cross-field rules, defaults and generated ids. Errors are appended to `errors`.
fn check_rules(row: &mut [Cell], errors: &mut FieldErrors) {
    let mut fail = |field: &str, message: String| errors.push((field.to_string(), message));

    let start = index(names::START_TIME);
    let end = index(names::END_TIME);
    let duration = index(names::DURATION_MS);
    match (&row[start], &row[end], &row[duration]) {
        (Cell::Null, _, _) => fail(names::START_TIME, "required field is missing".into()),
        (Cell::I64(s), Cell::I64(e), _) if e < s => {
            fail(names::END_TIME, "end_time is before start_time".into());
        }
        (Cell::I64(s), Cell::I64(e), Cell::Null) => row[duration] = Cell::F64((e - s) as f64 / 1e6),
        (Cell::I64(s), Cell::Null, Cell::F64(d)) => {
            let end_ns = (*d * 1e6).round();
            match s.checked_add(end_ns as i64) {
                Some(e) if end_ns < i64::MAX as f64 => row[end] = Cell::I64(e),
                _ => fail(names::DURATION_MS, "duration_ms is too large".into()),
            }
        }
        (Cell::I64(s), Cell::Null, Cell::Null) => row[end] = Cell::I64(*s),
        _ => {}
    }

    for name in ["duration_ms", "ttft_ms", "cost_usd", "temperature", "top_p"] {
        if let Cell::F64(v) = row[index(name)]
            && v < 0.0
        {
            fail(name, format!("must be >= 0, found {v}"));
        }
    }
    for name in [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "max_tokens",
    ] {
        if let Cell::I64(v) = row[index(name)]
            && v < 0
        {
            fail(name, format!("must be >= 0, found {v}"));
        }
    }
    if let Cell::U64(status) = row[index("http_status")]
        && !(100..=599).contains(&status)
    {
        fail(
            "http_status",
            format!("must be an HTTP status 100..=599, found {status}"),
        );
    }
    if let Cell::Str(kind) = &row[index("span_kind")]
        && kind != "client"
        && kind != "server"
    {
        fail(
            "span_kind",
            format!("must be \"client\" or \"server\", found {:?}", kind),
        );
    }
    for name in [names::TRACE_ID, names::SPAN_ID, "parent_span_id"] {
        if let Cell::Str(id) = &row[index(name)]
            && !valid_id(id)
        {
            fail(
                name,
                format!(
                    "must be 1 to 64 characters of [0-9A-Za-z_-], found {}",
                    describe(&Value::String(id.clone()))
                ),
            );
        }
    }

    fill_default(row, names::TRACE_ID, || random_hex(16));
    fill_default(row, names::SPAN_ID, || random_hex(8));
    fill_default(row, "source", || "api".into());
    fill_default(row, "span_kind", || "client".into());
}

fn fill_default(row: &mut [Cell], name: &str, make: impl FnOnce() -> String) {
    let i = index(name);
    if let Cell::Null = row[i] {
        row[i] = Cell::Str(make());
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        out.push_str(&format!("{:02x}", rand::random::<u8>()));
    }
    out
}

/// One row of a span-schema batch as cells (the inverse of `build_batch`), for the rare paths that
/// rewrite single rows (merging the two reports of one call).
pub(crate) fn row_cells(batch: &RecordBatch, row: usize) -> Vec<Cell> {
    row_cells_where(batch, row, |_| true)
}

/// One row as cells, with NULL for the columns `keep` says no to (they are not even read).
pub(crate) fn row_cells_where(
    batch: &RecordBatch,
    row: usize,
    keep: impl Fn(&str) -> bool,
) -> Vec<Cell> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Float64Type, Int64Type, TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type,
    };
    COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let Some(array) = batch.columns().get(i).filter(|_| keep(column.name)) else {
                return Cell::Null;
            };
            if array.is_null(row) {
                return Cell::Null;
            }
            let strings = |a: &dyn Array| -> Vec<String> {
                let a = a.as_string::<i32>();
                (0..a.len())
                    .filter(|j| !a.is_null(*j))
                    .map(|j| a.value(j).to_string())
                    .collect()
            };
            match column.kind {
                Kind::Str | Kind::JsonText => {
                    Cell::Str(array.as_string::<i32>().value(row).to_string())
                }
                Kind::Timestamp => {
                    Cell::I64(array.as_primitive::<TimestampNanosecondType>().value(row))
                }
                Kind::F64 => Cell::F64(array.as_primitive::<Float64Type>().value(row)),
                Kind::I64 => Cell::I64(array.as_primitive::<Int64Type>().value(row)),
                Kind::U16 => Cell::U64(array.as_primitive::<UInt16Type>().value(row) as u64),
                Kind::U32 => Cell::U64(array.as_primitive::<UInt32Type>().value(row) as u64),
                Kind::U64 => Cell::U64(array.as_primitive::<UInt64Type>().value(row)),
                Kind::Bool => Cell::Bool(array.as_boolean().value(row)),
                Kind::StrList => Cell::List(strings(array.as_list::<i32>().value(row).as_ref())),
                Kind::StrMap => {
                    let entries = array.as_map().value(row);
                    let keys = strings(entries.column(0).as_ref());
                    let values = entries.column(1).as_string::<i32>();
                    Cell::Map(
                        keys.into_iter()
                            .enumerate()
                            .filter(|(j, _)| !values.is_null(*j))
                            .map(|(j, k)| (k, values.value(j).to_string()))
                            .collect(),
                    )
                }
            }
        })
        .collect()
}

/// Invalid objects: position in the input (0-based) and (field, message) problems.
pub type Rejected = Vec<(usize, Vec<(String, String)>)>;

/// Spans given as JSON objects (from another wire format, e.g. OTLP) validated one by one: the valid
/// ones become a batch, each invalid one is reported by its position with its field errors.
pub fn validate_objects(objects: Vec<Map<String, Value>>) -> (Option<RecordBatch>, Rejected) {
    let mut rows = Vec::with_capacity(objects.len());
    let mut rejected = Vec::new();
    for (i, object) in objects.into_iter().enumerate() {
        match validate_row(object) {
            Ok(row) => rows.push(row),
            Err(errors) => rejected.push((i, errors)),
        }
    }
    let batch = (!rows.is_empty()).then(|| build_batch(rows));
    (batch, rejected)
}

/// One Arrow builder per column kind.
enum ColumnBuilder {
    Str(StringBuilder),
    Ts(TimestampNanosecondBuilder),
    F64(Float64Builder),
    I64(Int64Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    Bool(BooleanBuilder),
    List(ListBuilder<StringBuilder>),
    Map(MapBuilder<StringBuilder, StringBuilder>),
}

impl ColumnBuilder {
    fn new(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Str | Kind::JsonText => {
                ColumnBuilder::Str(StringBuilder::with_capacity(rows, rows * 16))
            }
            Kind::Timestamp => ColumnBuilder::Ts(
                TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            Kind::F64 => ColumnBuilder::F64(Float64Builder::with_capacity(rows)),
            Kind::I64 => ColumnBuilder::I64(Int64Builder::with_capacity(rows)),
            Kind::U16 => ColumnBuilder::U16(UInt16Builder::with_capacity(rows)),
            Kind::U32 => ColumnBuilder::U32(UInt32Builder::with_capacity(rows)),
            Kind::U64 => ColumnBuilder::U64(UInt64Builder::with_capacity(rows)),
            Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::StrList => ColumnBuilder::List(ListBuilder::new(StringBuilder::new())),
            Kind::StrMap => {
                let names = MapFieldNames {
                    entry: "entries".into(),
                    key: "keys".into(),
                    value: "values".into(),
                };
                ColumnBuilder::Map(MapBuilder::new(
                    Some(names),
                    StringBuilder::new(),
                    StringBuilder::new(),
                ))
            }
        }
    }

    /// Appends a cell that `convert` produced for this column's kind.
    fn append(&mut self, cell: Cell) {
        match (self, cell) {
            (ColumnBuilder::Str(b), Cell::Str(s)) => b.append_value(s),
            (ColumnBuilder::Ts(b), Cell::I64(v)) => b.append_value(v),
            (ColumnBuilder::F64(b), Cell::F64(v)) => b.append_value(v),
            (ColumnBuilder::I64(b), Cell::I64(v)) => b.append_value(v),
            (ColumnBuilder::U16(b), Cell::U64(v)) => b.append_value(v as u16),
            (ColumnBuilder::U32(b), Cell::U64(v)) => b.append_value(v as u32),
            (ColumnBuilder::U64(b), Cell::U64(v)) => b.append_value(v),
            (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (ColumnBuilder::List(b), Cell::List(items)) => {
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            (ColumnBuilder::Map(b), Cell::Map(entries)) => {
                for (k, v) in entries {
                    b.keys().append_value(k);
                    b.values().append_value(v);
                }
                // Infallible: keys and values were appended in pairs.
                let _ = b.append(true);
            }
            (builder, _) => builder.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Str(b) => b.append_null(),
            ColumnBuilder::Ts(b) => b.append_null(),
            ColumnBuilder::F64(b) => b.append_null(),
            ColumnBuilder::I64(b) => b.append_null(),
            ColumnBuilder::U16(b) => b.append_null(),
            ColumnBuilder::U32(b) => b.append_null(),
            ColumnBuilder::U64(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::List(b) => b.append_null(),
            ColumnBuilder::Map(b) => {
                let _ = b.append(false);
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Ts(b) => Arc::new(b.finish()),
            ColumnBuilder::F64(b) => Arc::new(b.finish()),
            ColumnBuilder::I64(b) => Arc::new(b.finish()),
            ColumnBuilder::U16(b) => Arc::new(b.finish()),
            ColumnBuilder::U32(b) => Arc::new(b.finish()),
            ColumnBuilder::U64(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::List(b) => Arc::new(b.finish()),
            ColumnBuilder::Map(b) => Arc::new(b.finish()),
        }
    }
}

pub(crate) fn build_batch(rows: Vec<Vec<Cell>>) -> RecordBatch {
    let mut builders: Vec<ColumnBuilder> = COLUMNS
        .iter()
        .map(|c| ColumnBuilder::new(c.kind, rows.len()))
        .collect();
    for row in rows {
        for (builder, cell) in builders.iter_mut().zip(row) {
            builder.append(cell);
        }
    }
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
    // Every column was built from the contract's own types with required columns always filled,
    // so a mismatch here is a bug in this module, not bad input.
    RecordBatch::try_new(span_schema(), arrays).expect("batch built from the span contract")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    fn ok(body: &str) -> RecordBatch {
        parse_spans(body.as_bytes(), BodyFormat::Auto).expect("valid body")
    }

    fn err(body: &str) -> ParseError {
        parse_spans(body.as_bytes(), BodyFormat::Auto).expect_err("invalid body")
    }

    const T: &str = r#""start_time":"2026-11-28T08:00:00Z""#;

    #[test]
    fn ndjson_and_array_give_the_same_rows() {
        let nd = format!(
            "{{{T},\"span_id\":\"a1\",\"input_tokens\":5}}\n\n{{{T},\"span_id\":\"a2\"}}\n"
        );
        let arr = format!(
            "[\n {{{T},\"span_id\":\"a1\",\"input_tokens\":5}},\n {{{T},\"span_id\":\"a2\"}}\n]"
        );
        let a = ok(&nd);
        let b = ok(&arr);
        assert_eq!(a.num_rows(), 2);
        assert_eq!(b.num_rows(), 2);
        let tokens = a
            .column_by_name("input_tokens")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(tokens.value(0), 5);
        assert!(tokens.is_null(1), "unknown stays NULL, never 0");
    }

    #[test]
    fn error_names_line_and_field() {
        let body = format!("{{{T}}}\n{{{T}}}\n{{{T},\"input_tokens\":\"abc\"}}\n");
        let e = err(&body);
        assert_eq!(
            e.to_string(),
            r#"line 3: input_tokens: expected integer, found "abc""#
        );
    }

    #[test]
    fn array_errors_name_the_line_of_the_element() {
        let body = format!("[\n{{{T}}},\n{{{T},\n\"http_status\": 99}}\n]");
        let e = err(&body);
        assert_eq!(e.errors[0].line, 3);
        assert_eq!(e.errors[0].field.as_deref(), Some("http_status"));
    }

    #[test]
    fn missing_start_time_and_syntax_errors_are_reported() {
        let e = err("{\"span_id\":\"x\"}\n{not json}\n");
        assert_eq!(e.total, 2);
        assert_eq!(
            e.errors[0].to_string(),
            "line 1: start_time: required field is missing"
        );
        assert!(
            e.errors[1].to_string().starts_with("line 2: invalid JSON"),
            "{}",
            e.errors[1]
        );
    }

    #[test]
    fn unknown_fields_go_to_attributes() {
        let b = ok(&format!(
            "{{{T},\"team\":\"search\",\"retries\":2,\"attributes\":{{\"a\":\"b\"}}}}"
        ));
        let map = b.column_by_name("attributes").unwrap().as_map();
        let keys = map.keys().as_string::<i32>();
        let values = map.values().as_string::<i32>();
        let got: Vec<(String, String)> = (0..keys.len())
            .map(|i| (keys.value(i).to_string(), values.value(i).to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), "b".into()),
                ("retries".into(), "2".into()),
                ("team".into(), "search".into())
            ]
        );
    }

    #[test]
    fn end_time_and_duration_derive_each_other() {
        let b = ok(r#"{"start_time":1000000000,"duration_ms":1.5}"#);
        let end = b
            .column_by_name("end_time")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampNanosecondType>();
        assert_eq!(end.value(0), 1_001_500_000);
        let b = ok(r#"{"start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:02Z"}"#);
        let d = b
            .column_by_name("duration_ms")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(d.value(0), 2000.0);
        assert!(
            err(r#"{"start_time":"2026-01-01T00:00:02Z","end_time":"2026-01-01T00:00:00Z"}"#)
                .to_string()
                .contains("end_time is before start_time")
        );
    }

    #[test]
    fn ranges_and_enums_are_checked() {
        assert!(
            err(&format!("{{{T},\"server_port\":70000}}"))
                .to_string()
                .contains("server_port: 70000 is out of range")
        );
        assert!(
            err(&format!("{{{T},\"output_tokens\":-1}}"))
                .to_string()
                .contains("output_tokens: must be >= 0")
        );
        assert!(
            err(&format!("{{{T},\"span_kind\":\"peer\"}}"))
                .to_string()
                .contains("span_kind")
        );
        assert!(
            err(&format!("{{{T},\"span_id\":\"a b\"}}"))
                .to_string()
                .contains("span_id")
        );
        assert!(err("[1]").to_string().contains("expected a JSON object"));
        assert!(err("").to_string().contains("no spans"));
        assert!(err("[").to_string().contains("line 1"));
        assert!(
            err(&format!("[{{{T}}}] x"))
                .to_string()
                .contains("trailing")
        );
    }

    #[test]
    fn ids_and_defaults_are_generated() {
        let b = ok(&format!("{{{T}}}"));
        assert_eq!(
            b.column_by_name("trace_id")
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .len(),
            32
        );
        assert_eq!(
            b.column_by_name("span_id")
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .len(),
            16
        );
        assert_eq!(
            b.column_by_name("source")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "api"
        );
    }

    #[test]
    fn json_content_is_kept_as_text() {
        let b = ok(&format!(
            "{{{T},\"input_messages\":[{{\"role\":\"user\"}}],\"finish_reasons\":[\"stop\"]}}"
        ));
        assert_eq!(
            b.column_by_name("input_messages")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            r#"[{"role":"user"}]"#
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_spans(&body, BodyFormat::Auto);
            let _ = parse_spans(&body, BodyFormat::Ndjson);
        }
    }
}
