# A complete deployment into an existing EKS cluster: bucket, key, IRSA role, sensor DaemonSet, backend
# StatefulSet, Glue table and Athena workgroup. See README.md in this directory.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "managed-by" = "terraform"
      "stack"      = "lumen"
    }
  }
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

# The cluster's IAM OIDC provider (IRSA). Create it first if the cluster has none:
#   eksctl utils associate-iam-oidc-provider --cluster <name> --approve
data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.region]
  }
}

module "lumen" {
  source = "../.."

  name                  = "lumen"
  eks_oidc_provider_arn = data.aws_iam_openid_connect_provider.this.arn

  backend_image = var.backend_image
  sensor_image  = var.sensor_image

  retention_days         = var.retention_days
  analyst_principal_arns = var.analyst_principal_arns

  # Nodes of an AL2023 / Bottlerocket node group: kernel 6.x, tracefs at /sys/kernel/tracing.
  sensor_capture_mode        = "redacted"
  sensor_priority_class_name = "system-node-critical"

  backend_flush_age = "2m"
  backend_env = {
    LUMEN_QUERY_TIMEOUT = "60s"
  }

  tags = {
    "cost-center" = "observability"
  }
}
