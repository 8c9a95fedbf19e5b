# --- storage ---

output "bucket_name" {
  description = "The spans bucket."
  value       = aws_s3_bucket.spans.id
}

output "bucket_arn" {
  description = "ARN of the spans bucket."
  value       = aws_s3_bucket.spans.arn
}

output "storage_url" {
  description = "What the backend gets as LUMEN_STORAGE (s3://<bucket>/<prefix>); also what a notebook reads (its manifest lists the committed files)."
  value       = local.storage_url
}

output "spans_location" {
  description = "S3 location of the Parquet files (hive layout date=YYYY-MM-DD/hour=HH)."
  value       = local.spans_location
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key that encrypts the spans and the Athena results."
  value       = aws_kms_key.lumen.arn
}

output "kms_key_alias" {
  description = "Alias of the key."
  value       = aws_kms_alias.lumen.name
}

# --- identity ---

output "backend_role_arn" {
  description = "IAM role the backend assumes through IRSA."
  value       = aws_iam_role.backend.arn
}

output "backend_role_name" {
  description = "Name of the backend's IAM role."
  value       = aws_iam_role.backend.name
}

output "analyst_policy_arn" {
  description = "Managed IAM policy with read access to spans, the Glue table and the Athena workgroup (null when create_analyst_policy is false). Attach it to analyst roles and list them in analyst_principal_arns."
  value       = var.create_analyst_policy ? aws_iam_policy.analyst[0].arn : null
}

# --- Kubernetes ---

output "namespace" {
  description = "Namespace of the sensor and the backend."
  value       = local.namespace
}

output "backend_service_name" {
  description = "Name of the backend's ClusterIP Service."
  value       = kubernetes_service_v1.backend.metadata[0].name
}

output "backend_service_dns" {
  description = "In-cluster DNS name of the backend Service."
  value       = "${kubernetes_service_v1.backend.metadata[0].name}.${local.namespace}.svc.cluster.local"
}

output "backend_url" {
  description = "In-cluster URL of the backend API (the sensors push to <backend_url>/v1/spans). From a workstation: kubectl -n <namespace> port-forward svc/<backend_service_name> 4318."
  value       = local.backend_url
}

output "ingest_token_secret_name" {
  description = "Kubernetes Secret (key \"token\") holding the ingest token."
  value       = kubernetes_secret_v1.ingest_token.metadata[0].name
}

output "query_token_secret_name" {
  description = "Kubernetes Secret (key \"token\") holding the query token."
  value       = kubernetes_secret_v1.query_token.metadata[0].name
}

output "ingest_token" {
  description = "Bearer token for POST /v1/spans."
  value       = local.ingest_token
  sensitive   = true
}

output "query_token" {
  description = "Bearer token for /v1/sql and the explore API (terraform output -raw query_token)."
  value       = local.query_token
  sensitive   = true
}

output "sensor_daemonset_name" {
  description = "Name of the sensor DaemonSet."
  value       = kubernetes_daemon_set_v1.sensor.metadata[0].name
}

output "sensor_capabilities" {
  description = "Linux capabilities the sensor container is granted (everything else is dropped)."
  value       = local.sensor_capabilities
}

# --- Athena / Glue ---

output "glue_database_name" {
  description = "Glue catalog database of the spans table."
  value       = aws_glue_catalog_database.lumen.name
}

output "glue_table_name" {
  description = "Glue table over the Parquet files (partition projection on date and hour)."
  value       = aws_glue_catalog_table.spans.name
}

output "athena_workgroup_name" {
  description = "Athena workgroup to query the spans in (encrypted results, enforced settings)."
  value       = aws_athena_workgroup.lumen.name
}

output "athena_results_location" {
  description = "Where the workgroup writes query results (SSE-KMS with the spans key)."
  value       = local.athena_results_location
}

output "athena_p90_query_id" {
  description = "ID of the saved query \"P50 / P90 / P99 latency by model, last 7 days\"."
  value       = aws_athena_named_query.p90_latency_by_model.id
}
