# ---------------------------------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------------------------------

variable "name" {
  description = "Name prefix for every resource this module creates (IAM role, KMS alias, Athena workgroup, Kubernetes objects)."
  type        = string
  default     = "lumen"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 characters of lowercase letters, digits and hyphens, start with a letter and not end with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every AWS resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------------
# Storage: the spans bucket
# ---------------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the S3 bucket for spans. null: \"<name>-spans-<account id>-<region>\"."
  type        = string
  default     = null

  validation {
    # S3 bucket naming rules, minus dots (a dotted name breaks TLS on virtual-hosted-style requests).
    condition = var.bucket_name == null ? true : (
      can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_name)) &&
      !startswith(var.bucket_name, "xn--") &&
      !startswith(var.bucket_name, "sthree-") &&
      !startswith(var.bucket_name, "amzn-s3-demo-") &&
      !endswith(var.bucket_name, "-s3alias") &&
      !endswith(var.bucket_name, "--ol-s3") &&
      !endswith(var.bucket_name, "--x-s3") &&
      !endswith(var.bucket_name, "--table-s3")
    )
    error_message = "bucket_name must be 3-63 characters of lowercase letters, digits and hyphens, begin and end with a letter or digit, and not use a prefix or suffix S3 reserves (xn--, sthree-, amzn-s3-demo-, -s3alias, --ol-s3, --x-s3, --table-s3). Dots are not allowed: they break TLS for virtual-hosted-style requests."
  }
}

variable "storage_prefix" {
  description = "Key prefix inside the bucket under which Lumen keeps its files (LUMEN_STORAGE=s3://<bucket>/<storage_prefix>): Parquet under <prefix>/spans/, the manifest under <prefix>/_lumen/. The backend's IAM role can touch nothing else in the bucket."
  type        = string
  default     = "lumen"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.=-]*(/[A-Za-z0-9][A-Za-z0-9_.=-]*)*$", var.storage_prefix)) && length(var.storage_prefix) <= 200
    error_message = "storage_prefix must be non-empty, at most 200 characters, made of letters, digits and _ . = -, with single slashes between segments and none at either end."
  }
}

variable "retention_days" {
  description = "Days after which Parquet files under <storage_prefix>/spans/ expire (S3 lifecycle). Read the README's note on retention and the manifest before lowering it on a bucket with data."
  type        = number
  default     = 90

  validation {
    condition     = var.retention_days > 0 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number greater than 0."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a superseded or deleted object version is kept (versioning protects against accidental deletes; this bounds what it costs)."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days > 0 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number greater than 0."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which S3 aborts multipart uploads that never completed (Lumen uploads Parquet files over --multipart-part in parts)."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_upload_days > 0 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number greater than 0."
  }
}

variable "access_log_bucket" {
  description = "Name of an existing bucket that receives S3 server access logs of the spans bucket. null: no access logging. The target bucket must use SSE-S3 (S3 cannot deliver access logs to SSE-KMS buckets) and allow logging.s3.amazonaws.com to write."
  type        = string
  default     = null

  validation {
    condition     = var.access_log_bucket == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_log_bucket))
    error_message = "access_log_bucket must be a valid S3 bucket name."
  }
}

variable "access_log_prefix" {
  description = "Key prefix for access log objects in access_log_bucket."
  type        = string
  default     = "s3-access-logs/lumen/"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket even when it holds spans. Keep false in production."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------------
# Encryption: the customer-managed KMS key
# ---------------------------------------------------------------------------------------------------

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled deletion of the KMS key takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "kms_rotation_period_days" {
  description = "Automatic rotation period of the KMS key's material."
  type        = number
  default     = 365

  validation {
    condition     = var.kms_rotation_period_days >= 90 && var.kms_rotation_period_days <= 2560
    error_message = "kms_rotation_period_days must be between 90 and 2560."
  }
}

variable "analyst_principal_arns" {
  description = "IAM role or user ARNs (in this account or others) that may decrypt spans with the KMS key, for Athena and notebooks. They still need an IAM policy: attach the one in the analyst_policy_arn output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.analyst_principal_arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:(role|user|assumed-role)/.+$", a))])
    error_message = "Every analyst_principal_arns entry must be an IAM role, user or assumed-role ARN (no wildcards, no account roots)."
  }
}

variable "create_analyst_policy" {
  description = "Create a customer-managed IAM policy with read access to the spans, the Glue table and the Athena workgroup, for you to attach to analyst roles."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# EKS / Kubernetes runtime
# ---------------------------------------------------------------------------------------------------

variable "eks_oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider of the EKS cluster (IRSA), e.g. arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC..."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.eks_oidc_provider_arn))
    error_message = "eks_oidc_provider_arn must be the ARN of an IAM OIDC provider (arn:aws:iam::<account>:oidc-provider/<issuer host and path>)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace for the sensor DaemonSet and the backend."
  type        = string
  default     = "lumen-system"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace)) && var.namespace != "default"
    error_message = "namespace must be a DNS-1123 label (and not \"default\")."
  }
}

variable "create_namespace" {
  description = "Create the namespace (false: it exists already)."
  type        = bool
  default     = true
}

variable "backend_image" {
  description = "Container image of the `lumen` backend (built from deploy/docker/lumen.Dockerfile), pinned by tag or digest."
  type        = string

  validation {
    condition     = can(regex("^[^\\s]+(@sha256:[a-f0-9]{64}|:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", var.backend_image)) && !endswith(var.backend_image, ":latest")
    error_message = "backend_image must carry an explicit tag other than latest, or a digest (@sha256:...)."
  }
}

variable "sensor_image" {
  description = "Container image of `lumen-sensor` (built from deploy/docker/lumen-sensor.Dockerfile), pinned by tag or digest."
  type        = string

  validation {
    condition     = can(regex("^[^\\s]+(@sha256:[a-f0-9]{64}|:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", var.sensor_image)) && !endswith(var.sensor_image, ":latest")
    error_message = "sensor_image must carry an explicit tag other than latest, or a digest (@sha256:...)."
  }
}

variable "image_pull_policy" {
  description = "imagePullPolicy of both workloads."
  type        = string
  default     = "IfNotPresent"

  validation {
    condition     = contains(["Always", "IfNotPresent", "Never"], var.image_pull_policy)
    error_message = "image_pull_policy must be Always, IfNotPresent or Never."
  }
}

variable "image_pull_secret_names" {
  description = "Names of existing docker-registry Secrets in the namespace, for private registries."
  type        = list(string)
  default     = []
}

variable "ingest_token" {
  description = "Bearer token the sensor presents to POST /v1/spans. null: a random 48-character token is generated (read it from the ingest_token output)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.ingest_token == null ? true : length(var.ingest_token) >= 32
    error_message = "ingest_token must be at least 32 characters."
  }
}

variable "query_token" {
  description = "Bearer token for /v1/sql and the explore API. null: a random 48-character token is generated (read it from the query_token output)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.query_token == null ? true : length(var.query_token) >= 32
    error_message = "query_token must be at least 32 characters."
  }
}

# --- backend ---

variable "backend_port" {
  description = "Port the backend listens on and its Service exposes."
  type        = number
  default     = 4318

  validation {
    condition     = var.backend_port >= 1024 && var.backend_port <= 65535 && floor(var.backend_port) == var.backend_port
    error_message = "backend_port must be a whole number between 1024 and 65535 (the backend runs as a non-root user)."
  }
}

variable "backend_replicas" {
  description = "Backend pods. Each has its own WAL volume and writer id; they share the bucket through the manifest. Queries on one pod see the other pods' spans only once those are flushed to Parquet (--flush-age)."
  type        = number
  default     = 1

  validation {
    condition     = var.backend_replicas >= 1 && var.backend_replicas <= 16 && floor(var.backend_replicas) == var.backend_replicas
    error_message = "backend_replicas must be a whole number between 1 and 16."
  }
}

variable "wal_volume_size" {
  description = "Size of each backend pod's persistent volume for the WAL (must hold --max-wal, 4GiB by default, plus headroom)."
  type        = string
  default     = "20Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|Ti)$", var.wal_volume_size))
    error_message = "wal_volume_size must be a Kubernetes quantity such as 20Gi."
  }
}

variable "wal_storage_class_name" {
  description = "StorageClass of the WAL volumes (null: the cluster default, e.g. gp3 through the EBS CSI driver)."
  type        = string
  default     = null
}

variable "backend_resources" {
  description = "CPU and memory requests and limits of the backend container. Keep the memory limit above --max-buffer + --query-memory."
  type = object({
    cpu_request    = string
    memory_request = string
    cpu_limit      = string
    memory_limit   = string
  })
  default = {
    cpu_request    = "500m"
    memory_request = "2Gi"
    cpu_limit      = "2"
    memory_limit   = "8Gi"
  }
}

variable "backend_flush_age" {
  description = "LUMEN_FLUSH_AGE of the backend: how long spans may stay in the WAL and memory before they are written to Parquet. Lumen does not compact files yet and writes one file per UTC hour per flush, so a longer age means fewer, larger files for Athena and notebooks; Lumen's own queries see unflushed spans either way."
  type        = string
  default     = "60s"

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m|h)$", var.backend_flush_age))
    error_message = "backend_flush_age must be a duration such as 500ms, 60s, 5m or 1h."
  }
}

variable "backend_env" {
  description = "Extra LUMEN_* settings for the backend, e.g. { LUMEN_QUERY_MEMORY = \"2GiB\", LUMEN_QUERY_TIMEOUT = \"60s\" } (see `lumen serve --help`). The storage, listen address, data dir, flush age and tokens are set by the module and cannot be overridden here."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for k in keys(var.backend_env) : can(regex("^LUMEN_[A-Z0-9_]+$", k)) && !contains([
      "LUMEN_STORAGE", "LUMEN_LISTEN", "LUMEN_DATA_DIR", "LUMEN_FLUSH_AGE", "LUMEN_INGEST_TOKEN", "LUMEN_QUERY_TOKEN", "LUMEN_ALLOW_UNAUTHENTICATED", "LUMEN_S3_ALLOW_HTTP"
    ], k)])
    error_message = "backend_env keys must be LUMEN_* settings other than the ones the module sets (STORAGE, LISTEN, DATA_DIR, FLUSH_AGE, INGEST_TOKEN, QUERY_TOKEN, ALLOW_UNAUTHENTICATED, S3_ALLOW_HTTP)."
  }
}

variable "enable_network_policy" {
  description = "Create a NetworkPolicy that admits traffic to the backend only from the sensor pods and from the namespaces in query_client_namespaces (needs a CNI that enforces NetworkPolicy, e.g. the VPC CNI with network policy enabled)."
  type        = bool
  default     = true
}

variable "query_client_namespaces" {
  description = "Namespaces whose pods may reach the backend's API (dashboards, notebooks running in the cluster), when enable_network_policy is true."
  type        = list(string)
  default     = []
}

# --- sensor ---

variable "sensor_capture_mode" {
  description = "What the sensor sends of prompts and completions (its --capture flag): redacted (the default: content with e-mail addresses, phone and card numbers, IBANs, national IDs, IP addresses and secrets replaced by typed placeholders on the node), full (as captured) or metadata (model, tokens, timings, status; no content at all). Credentials in headers never leave the node in any mode."
  type        = string
  default     = "redacted"

  validation {
    condition     = contains(["redacted", "full", "metadata"], var.sensor_capture_mode)
    error_message = "sensor_capture_mode must be redacted, full or metadata."
  }
}

variable "sensor_metrics_port" {
  description = "Port of the sensor's Prometheus metrics endpoint (inside the pod network namespace; not exposed by a Service)."
  type        = number
  default     = 9464

  validation {
    condition     = var.sensor_metrics_port >= 1024 && var.sensor_metrics_port <= 65535 && floor(var.sensor_metrics_port) == var.sensor_metrics_port
    error_message = "sensor_metrics_port must be a whole number between 1024 and 65535."
  }
}

variable "sensor_tracefs_host_path" {
  description = "Where tracefs is mounted on the nodes: /sys/kernel/tracing (Amazon Linux 2023, Bottlerocket, recent Ubuntu), or /sys/kernel/debug/tracing on nodes that only mount debugfs."
  type        = string
  default     = "/sys/kernel/tracing"

  validation {
    condition     = contains(["/sys/kernel/tracing", "/sys/kernel/debug/tracing"], var.sensor_tracefs_host_path)
    error_message = "sensor_tracefs_host_path must be /sys/kernel/tracing or /sys/kernel/debug/tracing."
  }
}

variable "sensor_resources" {
  description = "CPU and memory requests and limits of the sensor container (one per node)."
  type = object({
    cpu_request    = string
    memory_request = string
    cpu_limit      = string
    memory_limit   = string
  })
  default = {
    cpu_request    = "100m"
    memory_request = "128Mi"
    cpu_limit      = "1"
    memory_limit   = "512Mi"
  }
}

variable "sensor_node_selector" {
  description = "nodeSelector of the sensor DaemonSet (default: every Linux node)."
  type        = map(string)
  default     = { "kubernetes.io/os" = "linux" }
}

variable "sensor_tolerations" {
  description = "Tolerations of the sensor DaemonSet. The default tolerates every taint so that calls on tainted nodes (GPU pools, dedicated nodes) are seen too."
  type = list(object({
    key      = optional(string)
    operator = string
    value    = optional(string)
    effect   = optional(string)
  }))
  default = [{ operator = "Exists" }]
}

variable "sensor_priority_class_name" {
  description = "PriorityClass of the sensor pods, e.g. system-node-critical so that they are not evicted before the workloads they observe. null: none."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------------
# Scale-out: Glue catalog and Athena
# ---------------------------------------------------------------------------------------------------

variable "glue_database_name" {
  description = "Glue catalog database for the spans table. null: <name> with hyphens as underscores."
  type        = string
  default     = null

  validation {
    condition     = var.glue_database_name == null ? true : can(regex("^[a-z0-9_]{1,255}$", var.glue_database_name))
    error_message = "glue_database_name must be lowercase letters, digits and underscores (Athena's rule)."
  }
}

variable "glue_table_name" {
  description = "Name of the Glue table over the Parquet files."
  type        = string
  default     = "spans"

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_table_name))
    error_message = "glue_table_name must be lowercase letters, digits and underscores (Athena's rule)."
  }
}

variable "partition_projection_start_date" {
  description = "First date (YYYY-MM-DD) Athena's partition projection considers; spans before it are invisible to Athena. Set it to the day Lumen was first deployed."
  type        = string
  default     = "2025-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", var.partition_projection_start_date))
    error_message = "partition_projection_start_date must be a date in the form YYYY-MM-DD."
  }
}

variable "athena_results_prefix" {
  description = "Key prefix in the spans bucket for Athena query results (encrypted with the same KMS key). Must lie outside storage_prefix."
  type        = string
  default     = "athena-results"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.=-]*(/[A-Za-z0-9][A-Za-z0-9_.=-]*)*$", var.athena_results_prefix))
    error_message = "athena_results_prefix must be non-empty, made of letters, digits and _ . = -, with single slashes between segments and none at either end."
  }
  validation {
    condition = (
      var.athena_results_prefix != var.storage_prefix &&
      !startswith("${var.athena_results_prefix}/", "${var.storage_prefix}/") &&
      !startswith("${var.storage_prefix}/", "${var.athena_results_prefix}/")
    )
    error_message = "athena_results_prefix and storage_prefix must not contain one another: the backend's role is scoped to storage_prefix, and results must not land among the spans."
  }
}

variable "athena_results_retention_days" {
  description = "Days after which Athena query results expire."
  type        = number
  default     = 30

  validation {
    condition     = var.athena_results_retention_days > 0 && floor(var.athena_results_retention_days) == var.athena_results_retention_days
    error_message = "athena_results_retention_days must be a whole number greater than 0."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Per-query data scan limit of the Athena workgroup, in bytes (minimum 10 MB). Protects against an accidental full scan of months of spans."
  type        = number
  default     = 107374182400 # 100 GiB

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10485760 (10 MB), Athena's minimum."
  }
}
