# Lumen in your own AWS account: the spans bucket (SSE-KMS under a key you own), the backend's IAM role
# (IRSA), the sensor DaemonSet and the backend StatefulSet on your EKS cluster, and a Glue table and an
# Athena workgroup over the same Parquet files. Resources are split by concern:
#
#   kms.tf        the customer-managed key and its key policy
#   s3.tf         the spans bucket: encryption, versioning, public access block, TLS-only policy, lifecycle, logging
#   iam.tf        the backend's IRSA role (exactly the storage prefix and the key) and the optional analyst policy
#   kubernetes.tf namespace, service accounts, the token Secrets
#   backend.tf    the `lumen` StatefulSet with its WAL volume, its internal Services, the NetworkPolicy
#   sensor.tf     the `lumen-sensor` DaemonSet
#   analytics.tf  the Glue database and table (partition projection) and the Athena workgroup

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  bucket_name = coalesce(var.bucket_name, "${var.name}-spans-${local.account_id}-${local.region}")
  bucket_arn  = "arn:${local.partition}:s3:::${local.bucket_name}"

  # Everything Lumen writes lives under this prefix: <prefix>/spans/date=YYYY-MM-DD/hour=HH/<uuid>.parquet
  # and <prefix>/_lumen/manifest/*.json.
  storage_prefix = trimsuffix(var.storage_prefix, "/")
  storage_url    = "s3://${local.bucket_name}/${local.storage_prefix}"
  spans_location = "s3://${local.bucket_name}/${local.storage_prefix}/spans/"

  athena_results_prefix = trimsuffix(var.athena_results_prefix, "/")

  # IRSA: the issuer of the cluster's OIDC provider, without the scheme, as IAM condition keys expect it.
  oidc_issuer = element(split(":oidc-provider/", var.eks_oidc_provider_arn), 1)

  glue_database_name = coalesce(var.glue_database_name, replace(var.name, "-", "_"))

  namespace = var.create_namespace ? kubernetes_namespace_v1.lumen[0].metadata[0].name : var.namespace

  backend_service_account = "${var.name}-backend"
  sensor_service_account  = "${var.name}-sensor"
  backend_service_name    = var.name
  backend_url             = "http://${local.backend_service_name}.${var.namespace}.svc.cluster.local:${var.backend_port}"

  ingest_token = coalesce(var.ingest_token, random_password.ingest_token.result)
  query_token  = coalesce(var.query_token, random_password.query_token.result)

  common_labels = {
    "app.kubernetes.io/part-of"    = "lumen"
    "app.kubernetes.io/managed-by" = "terraform"
  }
  backend_labels = merge(local.common_labels, {
    "app.kubernetes.io/name"      = "lumen"
    "app.kubernetes.io/instance"  = var.name
    "app.kubernetes.io/component" = "backend"
  })
  sensor_labels = merge(local.common_labels, {
    "app.kubernetes.io/name"      = "lumen-sensor"
    "app.kubernetes.io/instance"  = var.name
    "app.kubernetes.io/component" = "sensor"
  })

  tags = merge({ "app" = "lumen" }, var.tags)
}
