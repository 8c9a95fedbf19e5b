# The node sensor: one pod per node, eBPF uprobes on TLS libraries and syscall tracepoints, spans pushed to
# the backend's internal Service with the ingest token.
#
# Privileges - exactly these, each for a reason (deploy/terraform/README.md, "Sensor privileges", lists
# the same set and tests/deploy/test_terraform.py checks that the two agree):
#
#   hostPID: true              see every process on the node: find the TLS libraries and Go binaries to probe
#                              in /proc/<pid>/maps and reach their files through /proc/<pid>/root, and read
#                              /proc/<pid>/cgroup to attribute a call to its container and pod. (Without it
#                              /proc shows only the sensor's own processes.)
#   runAsUser: 0               tracefs and other processes' /proc entries are root-only; capabilities are
#                              then cut to the list below (not privileged: true, which would grant all)
#   CAP_BPF                    load the BPF programs and create their maps and ring buffer (kernel >= 5.8)
#   CAP_PERFMON                attach uprobes and tracepoints (perf_event_open) and let the programs read
#                              process memory (bpf_probe_read_user)
#   CAP_SYS_PTRACE             open /proc/<pid>/maps and /proc/<pid>/root of processes in other containers
#                              (the kernel's ptrace access check guards both)
#   CAP_DAC_READ_SEARCH        open the executables and libraries under /proc/<pid>/root whatever their file
#                              modes, to resolve the symbols to attach to
#
# Not granted: privileged, CAP_SYS_ADMIN (the sensor would use it only to mount tracefs itself; the host's is
# mounted instead), CAP_SYS_RESOURCE (BPF memory is charged to the pod's cgroup on kernels >= 5.11), CAP_NET_ADMIN,
# CAP_NET_RAW, hostNetwork, hostIPC, any writable host path, the container runtime socket, a Kubernetes API
# token.
#
# Host paths, read-only:
#   /sys/kernel/btf            the kernel's BTF (vmlinux): CO-RE relocations of the BPF programs
#   tracefs                    tracepoint ids (events/*/id) for attaching to syscall tracepoints; the
#                              container's own /sys does not include the tracefs mount
# /proc is not mounted from the host: with hostPID the container's /proc already is the host's PID view.
# Writable, pod-local: /var/lib/lumen-sensor (the spool where batches wait while the backend is unreachable)
# and /tmp, both emptyDir with a size limit; the root filesystem is read-only.

locals {
  sensor_capabilities = ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"]

  sensor_selector = {
    "app.kubernetes.io/name"     = "lumen-sensor"
    "app.kubernetes.io/instance" = var.name
  }
}

resource "kubernetes_daemon_set_v1" "sensor" {
  metadata {
    name      = "${var.name}-sensor"
    namespace = local.namespace
    labels    = local.sensor_labels
  }

  spec {
    selector {
      match_labels = local.sensor_selector
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = "10%"
      }
    }

    template {
      metadata {
        labels = local.sensor_labels
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.sensor.metadata[0].name
        automount_service_account_token  = false
        host_pid                         = true
        host_network                     = false
        host_ipc                         = false
        dns_policy                       = "ClusterFirst"
        priority_class_name              = var.sensor_priority_class_name
        node_selector                    = var.sensor_node_selector
        termination_grace_period_seconds = 30

        dynamic "image_pull_secrets" {
          for_each = var.image_pull_secret_names
          content {
            name = image_pull_secrets.value
          }
        }

        dynamic "toleration" {
          for_each = var.sensor_tolerations
          content {
            key      = toleration.value.key
            operator = toleration.value.operator
            value    = toleration.value.value
            effect   = toleration.value.effect
          }
        }

        security_context {
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "sensor"
          image             = var.sensor_image
          image_pull_policy = var.image_pull_policy
          args = [
            "run",
            "--endpoint", local.backend_url,
            "--capture", var.sensor_capture_mode,
            "--metrics-listen", "0.0.0.0:${var.sensor_metrics_port}",
          ]

          env {
            name = "LUMEN_TOKEN"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.ingest_token.metadata[0].name
                key  = "token"
              }
            }
          }

          env {
            name  = "LUMEN_SPOOL_DIR"
            value = "/var/lib/lumen-sensor/spool"
          }

          env {
            name = "NODE_NAME"
            value_from {
              field_ref {
                field_path = "spec.nodeName"
              }
            }
          }

          port {
            name           = "metrics"
            container_port = var.sensor_metrics_port
            protocol       = "TCP"
          }

          security_context {
            privileged                 = false
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_user                = 0
            run_as_non_root            = false

            capabilities {
              drop = ["ALL"]
              add  = local.sensor_capabilities
            }

            seccomp_profile {
              type = "RuntimeDefault"
            }
          }

          resources {
            requests = {
              cpu    = var.sensor_resources.cpu_request
              memory = var.sensor_resources.memory_request
            }
            limits = {
              cpu    = var.sensor_resources.cpu_limit
              memory = var.sensor_resources.memory_limit
            }
          }

          liveness_probe {
            tcp_socket {
              port = "metrics"
            }
            initial_delay_seconds = 10
            period_seconds        = 20
            failure_threshold     = 3
          }

          readiness_probe {
            tcp_socket {
              port = "metrics"
            }
            period_seconds = 10
          }

          volume_mount {
            name       = "btf"
            mount_path = "/sys/kernel/btf"
            read_only  = true
          }

          volume_mount {
            name       = "tracefs"
            mount_path = "/sys/kernel/tracing"
            read_only  = true
          }

          volume_mount {
            name       = "spool"
            mount_path = "/var/lib/lumen-sensor"
          }

          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "btf"
          host_path {
            path = "/sys/kernel/btf"
            type = "Directory"
          }
        }

        volume {
          name = "tracefs"
          host_path {
            path = var.sensor_tracefs_host_path
            type = "Directory"
          }
        }

        # The sensor spools up to 256 MiB (--spool-max-bytes) while the backend is unreachable.
        volume {
          name = "spool"
          empty_dir {
            size_limit = "320Mi"
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "64Mi"
          }
        }
      }
    }
  }

  # A DaemonSet is "done" when scheduled; do not block the apply on image pulls of every node.
  wait_for_rollout = false
}
