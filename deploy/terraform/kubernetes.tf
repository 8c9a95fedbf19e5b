# Kubernetes objects shared by the sensor and the backend: the namespace, one service account each, and
# the bearer tokens.
#
# Pod Security Admission: the sensor needs hostPID, two read-only hostPath mounts and added capabilities,
# which only the "privileged" level admits, so the namespace enforces "privileged". Keep the namespace for
# Lumen alone. The backend pods themselves meet the "restricted" profile (non-root, no capabilities,
# read-only root filesystem, RuntimeDefault seccomp, no privilege escalation).

resource "kubernetes_namespace_v1" "lumen" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = merge(local.common_labels, {
      "pod-security.kubernetes.io/enforce" = "privileged"
      "pod-security.kubernetes.io/warn"    = "privileged"
      "pod-security.kubernetes.io/audit"   = "baseline"
    })
  }
}

# The backend's service account carries the IRSA annotation: the EKS pod identity webhook then injects a
# projected web-identity token (audience sts.amazonaws.com) and AWS_ROLE_ARN into the backend pods. That
# token is mounted independently of automountServiceAccountToken, which stays off: neither workload talks
# to the Kubernetes API, so neither gets a Kubernetes API token.
resource "kubernetes_service_account_v1" "backend" {
  metadata {
    name      = local.backend_service_account
    namespace = local.namespace
    labels    = local.backend_labels
    annotations = {
      "eks.amazonaws.com/role-arn"               = aws_iam_role.backend.arn
      "eks.amazonaws.com/sts-regional-endpoints" = "true"
    }
  }

  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "sensor" {
  metadata {
    name      = local.sensor_service_account
    namespace = local.namespace
    labels    = local.sensor_labels
  }

  automount_service_account_token = false
}

# Tokens. Generated unless passed in; 48 alphanumerics (no characters that need quoting in a header).
resource "random_password" "ingest_token" {
  length  = 48
  special = false
}

resource "random_password" "query_token" {
  length  = 48
  special = false
}

# Two Secrets so that the sensor can be given the ingest token without the query token (a sensor may
# write spans but never read them back).
resource "kubernetes_secret_v1" "ingest_token" {
  metadata {
    name      = "${var.name}-ingest-token"
    namespace = local.namespace
    labels    = local.common_labels
  }

  type = "Opaque"
  data = {
    token = local.ingest_token
  }
}

resource "kubernetes_secret_v1" "query_token" {
  metadata {
    name      = "${var.name}-query-token"
    namespace = local.namespace
    labels    = local.common_labels
  }

  type = "Opaque"
  data = {
    token = local.query_token
  }
}
