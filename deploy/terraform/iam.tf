# The backend's identity: an IAM role that only the backend's Kubernetes service account can assume
# (IRSA), allowed exactly what `lumen serve` does with its storage and nothing else:
#
#   s3:ListBucket                  list <prefix>/_lumen/manifest/ (manifest deltas) and <prefix>/spans/
#                                  (start-up clean-up of files a crash left unreferenced) - s3:prefix scoped
#   s3:GetObject                   read the manifest and Parquet files (queries)
#   s3:PutObject                   write Parquet files and manifest deltas (create-if-absent PUTs);
#                                  also covers CreateMultipartUpload / UploadPart / CompleteMultipartUpload
#   s3:DeleteObject                remove files of failed flushes and manifest deltas older than two checkpoints
#   s3:AbortMultipartUpload        give up a multipart upload of a large Parquet file that failed
#   s3:ListMultipartUploadParts    resume / inspect a multipart upload in progress
#   kms:GenerateDataKey, kms:Decrypt   on the spans key, through S3 only (SSE-KMS writes and reads)

data "aws_iam_policy_document" "backend_assume" {
  statement {
    sid     = "EksServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${local.backend_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "backend" {
  name                 = "${var.name}-backend"
  description          = "Lumen backend (IRSA, ${var.namespace}/${local.backend_service_account}): read and write s3://${local.bucket_name}/${local.storage_prefix}/ with the spans KMS key"
  assume_role_policy   = data.aws_iam_policy_document.backend_assume.json
  max_session_duration = 3600

  tags = local.tags
}

data "aws_iam_policy_document" "backend" {
  statement {
    sid       = "ListLumenPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.storage_prefix}/*"]
    }
  }

  statement {
    sid    = "ReadWriteLumenObjects"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${local.bucket_arn}/${local.storage_prefix}/*"]
  }

  statement {
    sid       = "UseSpansKeyThroughS3"
    effect    = "Allow"
    actions   = local.kms_s3_data_actions
    resources = [aws_kms_key.lumen.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "backend" {
  name   = "lumen-storage"
  role   = aws_iam_role.backend.id
  policy = data.aws_iam_policy_document.backend.json
}

# ---------------------------------------------------------------------------------------------------
# Read-only access for analysts: Athena in the Lumen workgroup, the Glue table, the Parquet files and
# the manifest (for notebooks), and the key. Created, not attached: attach it to your analysts' roles and
# list those roles in var.analyst_principal_arns so that the key policy lets them decrypt.
# ---------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "analyst" {
  statement {
    sid       = "ListSpansAndResults"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.storage_prefix}/*", "${local.athena_results_prefix}/*"]
    }
  }

  statement {
    sid       = "LocateBucket"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arn]
  }

  statement {
    sid       = "ReadSpansAndManifest"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.storage_prefix}/*"]
  }

  statement {
    sid    = "AthenaResults"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${local.bucket_arn}/${local.athena_results_prefix}/*"]
  }

  statement {
    sid    = "AthenaWorkgroup"
    effect = "Allow"
    actions = [
      "athena:BatchGetNamedQuery",
      "athena:BatchGetQueryExecution",
      "athena:GetNamedQuery",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryRuntimeStatistics",
      "athena:GetWorkGroup",
      "athena:ListNamedQueries",
      "athena:ListQueryExecutions",
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
    ]
    resources = [aws_athena_workgroup.lumen.arn]
  }

  statement {
    sid    = "AthenaCatalog"
    effect = "Allow"
    actions = [
      "athena:GetDatabase",
      "athena:GetDataCatalog",
      "athena:GetTableMetadata",
      "athena:ListDatabases",
      "athena:ListTableMetadata",
    ]
    resources = ["arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog"]
  }

  statement {
    sid    = "GlueTable"
    effect = "Allow"
    actions = [
      "glue:BatchGetPartition",
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
    ]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.lumen.arn,
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${aws_glue_catalog_database.lumen.name}/${aws_glue_catalog_table.spans.name}",
    ]
  }

  statement {
    sid       = "UseSpansKeyThroughS3"
    effect    = "Allow"
    actions   = local.kms_s3_data_actions
    resources = [aws_kms_key.lumen.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "analyst" {
  count = var.create_analyst_policy ? 1 : 0

  name        = "${var.name}-analyst"
  description = "Read Lumen spans: Athena workgroup ${var.name}, Glue table ${local.glue_database_name}.${var.glue_table_name}, s3://${local.bucket_name}/${local.storage_prefix}/ and its KMS key"
  policy      = data.aws_iam_policy_document.analyst.json

  tags = local.tags
}
