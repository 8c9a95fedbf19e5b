# The spans bucket. Layout (written by `lumen serve --storage s3://<bucket>/<storage_prefix>`):
#
#   <storage_prefix>/spans/date=YYYY-MM-DD/hour=HH/<uuid v7>.parquet   data (hive layout, zstd)
#   <storage_prefix>/_lumen/manifest/<seq>.json, checkpoint-<seq>.json  which files make up the table
#   <athena_results_prefix>/...                                        Athena query results
#
# Cross-region replication and event notifications are not configured: replication would copy prompts and
# completions to a second region, which is a decision for the data owner, not a default; nothing consumes
# object events. Both checkov checks are skipped below with that reason.

resource "aws_s3_bucket" "spans" {
  #checkov:skip=CKV_AWS_144:Cross-region replication would copy prompts and completions into a second region; that is the data owner's decision, not a default. Versioning and KMS protect the single copy.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of the spans bucket; Lumen tracks its files in its own manifest.
  #checkov:skip=CKV_AWS_18:Access logging is optional (var.access_log_bucket) because it needs a separate SSE-S3 bucket that this module does not own; aws_s3_bucket_logging.spans turns it on.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  tags = local.tags
}

# ACLs disabled: the bucket owner owns every object, access is decided by policies alone.
resource "aws_s3_bucket_ownership_controls" "spans" {
  bucket = aws_s3_bucket.spans.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "spans" {
  bucket = aws_s3_bucket.spans.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "spans" {
  bucket = aws_s3_bucket.spans.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Default encryption: SSE-KMS under the customer-managed key. The S3 Bucket Key cuts KMS requests (and
# their cost) by caching a bucket-level data key.
resource "aws_s3_bucket_server_side_encryption_configuration" "spans" {
  bucket = aws_s3_bucket.spans.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lumen.arn
    }
    bucket_key_enabled = true
  }
}

data "aws_iam_policy_document" "bucket" {
  # Wildcards appear only in Deny statements here: denying every S3 action to every principal over a
  # non-TLS connection is the strict reading.
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOutdatedTLS"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "spans" {
  bucket = aws_s3_bucket.spans.id
  policy = data.aws_iam_policy_document.bucket.json

  # A policy PUT while the public access block is still being applied can be refused.
  depends_on = [aws_s3_bucket_public_access_block.spans]
}

resource "aws_s3_bucket_lifecycle_configuration" "spans" {
  bucket = aws_s3_bucket.spans.id

  # Retention of spans: only the Parquet data expires. The manifest (<prefix>/_lumen/) is never expired by
  # S3: Lumen compacts it itself, and expiring it would lose track of live files.
  rule {
    id     = "expire-spans"
    status = "Enabled"

    filter {
      prefix = "${local.storage_prefix}/spans/"
    }

    expiration {
      days = var.retention_days
    }
  }

  rule {
    id     = "expire-athena-results"
    status = "Enabled"

    filter {
      prefix = "${local.athena_results_prefix}/"
    }

    expiration {
      days = var.athena_results_retention_days
    }
  }

  # Whole bucket: old versions (kept by versioning after an overwrite or delete) go after a grace period,
  # delete markers without versions behind them are removed, and abandoned multipart uploads are aborted.
  rule {
    id     = "noncurrent-versions-and-incomplete-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  # Lifecycle rules on a versioned bucket apply once versioning is on.
  depends_on = [aws_s3_bucket_versioning.spans]
}

resource "aws_s3_bucket_logging" "spans" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.spans.id
  target_bucket = var.access_log_bucket
  target_prefix = var.access_log_prefix
}
