# The customer-managed key that encrypts every span at rest (S3 SSE-KMS) and every Athena result.
#
# Key policy, statement by statement:
#   KeyAdministration   the account's IAM may *administer* the key (describe, rotate, tag, change the policy,
#                       schedule deletion): the explicit admin actions only, no kms:* and no data-plane
#                       actions, so an account admin cannot read spans just by holding AdministratorAccess.
#   BackendUsesKey      the backend's IRSA role may Decrypt / GenerateDataKey, only through S3 in this region.
#   AnalystsUseKey      the roles in var.analyst_principal_arns, the same, for Athena and notebooks.
# "Resource": "*" in a key policy means "this key" (a key policy is attached to exactly one key).

locals {
  kms_admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]
  # What S3 needs from KMS on behalf of a caller: GenerateDataKey to write, Decrypt to read
  # (and to complete multipart uploads).
  kms_s3_data_actions = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
  ]
}

data "aws_iam_policy_document" "kms" {
  statement {
    sid       = "KeyAdministration"
    effect    = "Allow"
    actions   = local.kms_admin_actions
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "BackendUsesKey"
    effect    = "Allow"
    actions   = local.kms_s3_data_actions
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.backend.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(var.analyst_principal_arns) > 0 ? [1] : []

    content {
      sid       = "AnalystsUseKey"
      effect    = "Allow"
      actions   = local.kms_s3_data_actions
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.analyst_principal_arns
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_kms_key" "lumen" {
  description             = "Lumen ${var.name}: encrypts LLM spans in s3://${local.bucket_name} and Athena results"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.kms_deletion_window_days
  enable_key_rotation     = true
  rotation_period_in_days = var.kms_rotation_period_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.kms.json

  tags = local.tags
}

resource "aws_kms_alias" "lumen" {
  name          = "alias/${var.name}-spans"
  target_key_id = aws_kms_key.lumen.key_id
}
