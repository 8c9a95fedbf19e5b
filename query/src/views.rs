//! Views and reference tables that every Lumen SQL session has next to `spans`:
//!
//! - `span_columns(column_name, data_type, description)`: the span contract, documented.
//! - `spans_daily_cost(day, provider, request_model, calls, input_tokens, output_tokens, cost_usd)`.
//! - `spans_errors`: the spans that failed (an error type, or an HTTP status of 400 or more).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::executor::block_on;

use lumen_ingest::schema::COLUMNS;

pub const VIEWS: &[(&str, &str)] = &[
    (
        "spans_daily_cost",
        "SELECT date_trunc('day', start_time) AS day, provider, request_model, count(*) AS calls, \
         sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd \
         FROM spans GROUP BY 1, 2, 3",
    ),
    (
        "spans_errors",
        "SELECT * FROM spans WHERE error_type IS NOT NULL OR http_status >= 400",
    ),
];

pub fn register(ctx: &SessionContext) -> Result<(), DataFusionError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            COLUMNS.iter().map(|c| c.name),
        )),
        Arc::new(StringArray::from_iter_values(
            COLUMNS.iter().map(|c| c.kind.data_type().to_string()),
        )),
        Arc::new(StringArray::from_iter_values(COLUMNS.iter().map(|c| c.doc))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    ctx.register_table(
        "span_columns",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    for (name, query) in VIEWS {
        // Creating a view only plans; it never blocks on I/O.
        block_on(ctx.sql(&format!("CREATE VIEW {name} AS {query}")))?;
    }
    Ok(())
}
