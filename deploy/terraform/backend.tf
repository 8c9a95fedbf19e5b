# The backend: `lumen serve` as a StatefulSet. Each pod keeps its write-ahead log (and writer id) on its own
# persistent volume, so a span acknowledged before a pod restart is still there after it; Parquet files
# and the manifest go to the bucket through the IRSA role. Reachable only inside the cluster.

locals {
  backend_selector = {
    "app.kubernetes.io/name"     = "lumen"
    "app.kubernetes.io/instance" = var.name
  }

  backend_data_dir = "/var/lib/lumen"

  backend_env = merge(var.backend_env, {
    LUMEN_LISTEN    = "0.0.0.0:${var.backend_port}"
    LUMEN_DATA_DIR  = local.backend_data_dir
    LUMEN_STORAGE   = local.storage_url
    LUMEN_FLUSH_AGE = var.backend_flush_age
    AWS_REGION      = local.region
  })
}

resource "kubernetes_stateful_set_v1" "backend" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.backend_labels
  }

  spec {
    service_name          = kubernetes_service_v1.backend_headless.metadata[0].name
    replicas              = var.backend_replicas
    pod_management_policy = "Parallel"

    selector {
      match_labels = local.backend_selector
    }

    update_strategy {
      type = "RollingUpdate"
    }

    # Keep the WAL volumes when the StatefulSet is deleted or scaled down: they may hold acknowledged
    # spans that are not in Parquet yet.
    persistent_volume_claim_retention_policy {
      when_deleted = "Retain"
      when_scaled  = "Retain"
    }

    template {
      metadata {
        labels = local.backend_labels
      }

      spec {
        service_account_name            = kubernetes_service_account_v1.backend.metadata[0].name
        automount_service_account_token = false
        # SIGTERM makes lumen stop accepting spans and flush; give it time to upload.
        termination_grace_period_seconds = 120

        dynamic "image_pull_secrets" {
          for_each = var.image_pull_secret_names
          content {
            name = image_pull_secrets.value
          }
        }

        security_context {
          run_as_non_root        = true
          run_as_user            = 10001
          run_as_group           = 10001
          fs_group               = 10001
          fs_group_change_policy = "OnRootMismatch"

          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "lumen"
          image             = var.backend_image
          image_pull_policy = var.image_pull_policy
          args              = ["serve"]

          dynamic "env" {
            for_each = local.backend_env
            content {
              name  = env.key
              value = env.value
            }
          }

          env {
            name = "LUMEN_INGEST_TOKEN"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.ingest_token.metadata[0].name
                key  = "token"
              }
            }
          }

          env {
            name = "LUMEN_QUERY_TOKEN"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.query_token.metadata[0].name
                key  = "token"
              }
            }
          }

          port {
            name           = "http"
            container_port = var.backend_port
            protocol       = "TCP"
          }

          security_context {
            privileged                 = false
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true

            capabilities {
              drop = ["ALL"]
            }
          }

          resources {
            requests = {
              cpu    = var.backend_resources.cpu_request
              memory = var.backend_resources.memory_request
            }
            limits = {
              cpu    = var.backend_resources.cpu_limit
              memory = var.backend_resources.memory_limit
            }
          }

          # At start-up lumen waits for the bucket (it needs the manifest) and replays its WAL.
          startup_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 5
            failure_threshold = 60
          }

          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 20
            failure_threshold = 3
          }

          readiness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds = 10
          }

          volume_mount {
            name       = "wal"
            mount_path = local.backend_data_dir
          }

          # Scratch space (e.g. query operators spilling to disk).
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "8Gi"
          }
        }
      }
    }

    volume_claim_template {
      metadata {
        name   = "wal"
        labels = local.backend_labels
      }

      spec {
        access_modes       = ["ReadWriteOnce"]
        storage_class_name = var.wal_storage_class_name

        resources {
          requests = {
            storage = var.wal_volume_size
          }
        }
      }
    }
  }

  wait_for_rollout = false
}

# The Service the sensors and in-cluster clients use. ClusterIP only: no load balancer, no node port.
# Reach it from outside the cluster with `kubectl port-forward svc/<name> 4318`.
resource "kubernetes_service_v1" "backend" {
  metadata {
    name      = local.backend_service_name
    namespace = local.namespace
    labels    = local.backend_labels
  }

  spec {
    type     = "ClusterIP"
    selector = local.backend_selector

    port {
      name        = "http"
      port        = var.backend_port
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

# Headless Service that gives the StatefulSet's pods stable DNS names.
resource "kubernetes_service_v1" "backend_headless" {
  metadata {
    name      = "${local.backend_service_name}-headless"
    namespace = local.namespace
    labels    = local.backend_labels
  }

  spec {
    type                        = "ClusterIP"
    cluster_ip                  = "None"
    selector                    = local.backend_selector
    publish_not_ready_addresses = true

    port {
      name        = "http"
      port        = var.backend_port
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

# Only the sensors (and namespaces you name) may talk to the backend.
resource "kubernetes_network_policy_v1" "backend" {
  count = var.enable_network_policy ? 1 : 0

  metadata {
    name      = "${var.name}-backend-ingress"
    namespace = local.namespace
    labels    = local.backend_labels
  }

  spec {
    policy_types = ["Ingress"]

    pod_selector {
      match_labels = local.backend_selector
    }

    ingress {
      from {
        pod_selector {
          match_labels = local.sensor_selector
        }
      }

      dynamic "from" {
        for_each = length(var.query_client_namespaces) > 0 ? [1] : []
        content {
          namespace_selector {
            match_expressions {
              key      = "kubernetes.io/metadata.name"
              operator = "In"
              values   = var.query_client_namespaces
            }
          }
        }
      }

      ports {
        port     = "http"
        protocol = "TCP"
      }
    }
  }
}
