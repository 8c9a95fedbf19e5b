# Scale-out path: the Glue catalog table over the very Parquet files Lumen writes, with partition
# projection on the hive layout (no crawler, no MSCK REPAIR, no copy), and an Athena workgroup whose
# results are encrypted with the spans key. Months of spans can then be queried in place:
#
#   SELECT request_model, count(*) AS calls,
#          approx_percentile(duration_ms, 0.9) AS p90_ms
#   FROM "<database>"."spans"
#   WHERE "date" >= date_format(current_date - interval '7' day, '%Y-%m-%d')
#     AND span_kind = 'client'
#   GROUP BY request_model
#   ORDER BY calls DESC;
#
# Column types follow the Parquet schema Lumen writes (tests/deploy/test_glue_schema.py reads a file that
# a real `lumen serve` wrote and compares): timestamp(ns, UTC) -> timestamp (Athena reads it at millisecond
# precision), uint32 / uint64 -> bigint, uint16 -> int, list<utf8> -> array<string>,
# map<utf8, utf8> -> map<string,string>.

locals {
  glue_columns = [
    { name = "trace_id", type = "string", comment = "trace id (32 hex chars); generated when absent" },
    { name = "span_id", type = "string", comment = "span id (16 hex chars); generated when absent; ingest is idempotent on it" },
    { name = "parent_span_id", type = "string", comment = "parent span id, from a captured traceparent" },
    { name = "start_time", type = "timestamp", comment = "REQUIRED. first request byte" },
    { name = "end_time", type = "timestamp", comment = "last response byte; derived from duration_ms when absent" },
    { name = "duration_ms", type = "double", comment = "total latency; derived from end_time when absent" },
    { name = "ttft_ms", type = "double", comment = "time to first content-bearing chunk (streams)" },
    { name = "source", type = "string", comment = "ebpf | otlp | api (default api)" },
    { name = "span_kind", type = "string", comment = "client | server (default client)" },
    { name = "host", type = "string", comment = "host name" },
    { name = "service_name", type = "string", comment = "workload / service" },
    { name = "k8s_namespace", type = "string", comment = "Kubernetes namespace" },
    { name = "k8s_pod", type = "string", comment = "Kubernetes pod" },
    { name = "container_id", type = "string", comment = "container id" },
    { name = "pid", type = "bigint", comment = "calling process id" },
    { name = "process_name", type = "string", comment = "calling process name" },
    { name = "exe", type = "string", comment = "calling process executable" },
    { name = "server_address", type = "string", comment = "peer address or host name" },
    { name = "server_port", type = "int", comment = "peer port" },
    { name = "client_address", type = "string", comment = "client address" },
    { name = "tls_library", type = "string", comment = "openssl, boringssl, go, plaintext, ..." },
    { name = "http_version", type = "string", comment = "1.1, 2" },
    { name = "http_method", type = "string", comment = "HTTP method" },
    { name = "url_path", type = "string", comment = "HTTP path (no secrets in query)" },
    { name = "http_status", type = "int", comment = "HTTP status (100..=599)" },
    { name = "provider", type = "string", comment = "gen_ai.provider.name: openai, anthropic, aws.bedrock, ..." },
    { name = "operation", type = "string", comment = "chat, text_completion, embeddings, generate_content, ..." },
    { name = "request_model", type = "string", comment = "model asked for" },
    { name = "response_model", type = "string", comment = "model that answered" },
    { name = "response_id", type = "string", comment = "provider response id" },
    { name = "streaming", type = "boolean", comment = "streamed response" },
    { name = "finish_reasons", type = "array<string>", comment = "finish reasons" },
    { name = "input_tokens", type = "bigint", comment = "input tokens (>= 0), incl. cached" },
    { name = "output_tokens", type = "bigint", comment = "output tokens (>= 0), incl. reasoning" },
    { name = "cache_read_tokens", type = "bigint", comment = "cached input tokens read (>= 0)" },
    { name = "cache_creation_tokens", type = "bigint", comment = "input tokens written to cache (>= 0)" },
    { name = "reasoning_tokens", type = "bigint", comment = "reasoning tokens (>= 0)" },
    { name = "cost_usd", type = "double", comment = "cost in USD (>= 0); NULL when the model is unknown" },
    { name = "temperature", type = "double", comment = "request temperature" },
    { name = "top_p", type = "double", comment = "request top_p" },
    { name = "max_tokens", type = "bigint", comment = "request max tokens" },
    { name = "error_type", type = "string", comment = "provider error type or HTTP status class" },
    { name = "error_message", type = "string", comment = "error message" },
    { name = "input_messages", type = "string", comment = "prompt messages, OTel GenAI JSON" },
    { name = "output_messages", type = "string", comment = "completion messages, OTel GenAI JSON" },
    { name = "system_instructions", type = "string", comment = "system instructions, OTel GenAI JSON" },
    { name = "tool_definitions", type = "string", comment = "tool definitions, JSON" },
    { name = "request_bytes", type = "bigint", comment = "request body bytes" },
    { name = "response_bytes", type = "bigint", comment = "response body bytes" },
    { name = "capture_flags", type = "array<string>", comment = "truncated, redacted, mid_stream_attach, ..." },
    { name = "duplicate_of", type = "string", comment = "set when another source already stored this call: the span_id of the row that counts" },
    { name = "attributes", type = "map<string,string>", comment = "everything else; unknown input fields land here" },
  ]

  athena_results_location = "s3://${local.bucket_name}/${local.athena_results_prefix}/"
}

resource "aws_glue_catalog_database" "lumen" {
  name        = local.glue_database_name
  description = "Lumen LLM spans in s3://${local.bucket_name}/${local.storage_prefix}/"

  tags = local.tags
}

resource "aws_glue_catalog_table" "spans" {
  name          = var.glue_table_name
  database_name = aws_glue_catalog_database.lumen.name
  description   = "One row per LLM call (the Lumen span contract). Partitioned by UTC date and hour of start_time."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"       = "TRUE"
    "classification" = "parquet"

    # Partition projection: Athena computes the partitions from these rules instead of asking the catalog,
    # so new hours are queryable the moment Lumen writes them. The template is Lumen's layout:
    # <prefix>/spans/date=YYYY-MM-DD/hour=HH/<uuid>.parquet
    "projection.enabled"            = "true"
    "projection.date.type"          = "date"
    "projection.date.format"        = "yyyy-MM-dd"
    "projection.date.range"         = "${var.partition_projection_start_date},NOW"
    "projection.date.interval"      = "1"
    "projection.date.interval.unit" = "DAYS"
    "projection.hour.type"          = "integer"
    "projection.hour.range"         = "0,23"
    "projection.hour.digits"        = "2"
    "storage.location.template"     = "${local.spans_location}date=$${date}/hour=$${hour}/"
  }

  partition_keys {
    name    = "date"
    type    = "string"
    comment = "UTC date of start_time, YYYY-MM-DD (quote it in SQL: \"date\")"
  }

  partition_keys {
    name    = "hour"
    type    = "int"
    comment = "UTC hour of start_time, 0-23"
  }

  storage_descriptor {
    location      = local.spans_location
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.glue_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_athena_workgroup" "lumen" {
  name        = var.name
  description = "Lumen spans: results encrypted with the spans key, settings enforced for every query"
  state       = "ENABLED"

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = local.athena_results_location
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.lumen.arn
      }
    }
  }

  tags = local.tags
}

# Ready-made queries, listed in the workgroup's "Saved queries".
resource "aws_athena_named_query" "p90_latency_by_model" {
  name        = "${var.name}: P50 / P90 / P99 latency by model, last 7 days"
  description = "Latency percentiles per requested model (client-side spans: each call once)."
  workgroup   = aws_athena_workgroup.lumen.id
  database    = aws_glue_catalog_database.lumen.name
  query       = <<-SQL
    SELECT request_model,
           count(*)                             AS calls,
           approx_percentile(duration_ms, 0.5)  AS p50_ms,
           approx_percentile(duration_ms, 0.9)  AS p90_ms,
           approx_percentile(duration_ms, 0.99) AS p99_ms,
           approx_percentile(ttft_ms, 0.9)      AS p90_ttft_ms
    FROM "${aws_glue_catalog_database.lumen.name}"."${aws_glue_catalog_table.spans.name}"
    WHERE "date" >= date_format(current_date - interval '7' day, '%Y-%m-%d')
      AND span_kind = 'client'
    GROUP BY request_model
    ORDER BY calls DESC
  SQL
}

resource "aws_athena_named_query" "daily_cost" {
  name        = "${var.name}: tokens and cost per day and model, last 30 days"
  description = "Daily input/output tokens and cost in USD per provider and model."
  workgroup   = aws_athena_workgroup.lumen.id
  database    = aws_glue_catalog_database.lumen.name
  query       = <<-SQL
    SELECT "date",
           provider,
           request_model,
           count(*)           AS calls,
           sum(input_tokens)  AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(cost_usd)      AS cost_usd
    FROM "${aws_glue_catalog_database.lumen.name}"."${aws_glue_catalog_table.spans.name}"
    WHERE "date" >= date_format(current_date - interval '30' day, '%Y-%m-%d')
      AND span_kind = 'client'
    GROUP BY 1, 2, 3
    ORDER BY 1, cost_usd DESC
  SQL
}

resource "aws_athena_named_query" "errors" {
  name        = "${var.name}: errors by model and type, last 7 days"
  description = "Failed calls (error_type set or HTTP status >= 400) by model, error type and status."
  workgroup   = aws_athena_workgroup.lumen.id
  database    = aws_glue_catalog_database.lumen.name
  query       = <<-SQL
    SELECT request_model,
           coalesce(error_type, 'http_' || cast(http_status AS varchar)) AS error,
           http_status,
           count(*) AS calls
    FROM "${aws_glue_catalog_database.lumen.name}"."${aws_glue_catalog_table.spans.name}"
    WHERE "date" >= date_format(current_date - interval '7' day, '%Y-%m-%d')
      AND span_kind = 'client'
      AND (error_type IS NOT NULL OR http_status >= 400)
    GROUP BY 1, 2, 3
    ORDER BY calls DESC
  SQL
}
