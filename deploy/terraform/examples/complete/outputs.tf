output "bucket_name" {
  description = "The spans bucket."
  value       = module.lumen.bucket_name
}

output "storage_url" {
  description = "s3:// location of Lumen's files (the notebooks' LUMEN_DATA)."
  value       = module.lumen.storage_url
}

output "kms_key_arn" {
  description = "The key that encrypts the spans."
  value       = module.lumen.kms_key_arn
}

output "backend_role_arn" {
  description = "The backend's IRSA role."
  value       = module.lumen.backend_role_arn
}

output "backend_url" {
  description = "In-cluster URL of the backend."
  value       = module.lumen.backend_url
}

output "namespace" {
  description = "Namespace of the sensor and the backend."
  value       = module.lumen.namespace
}

output "athena_workgroup_name" {
  description = "Athena workgroup for the spans."
  value       = module.lumen.athena_workgroup_name
}

output "glue_table" {
  description = "The spans table for Athena (database.table)."
  value       = "${module.lumen.glue_database_name}.${module.lumen.glue_table_name}"
}

output "analyst_policy_arn" {
  description = "Attach to the roles in analyst_principal_arns."
  value       = module.lumen.analyst_policy_arn
}

output "query_token" {
  description = "Bearer token for /v1/sql (terraform output -raw query_token)."
  value       = module.lumen.query_token
  sensitive   = true
}
