//! The sensor's own numbers, served in the Prometheus text format on `--metrics-listen`: what was
//! captured, what was lost and where (ring buffer, per-call cap, export), and what is attached.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::bpf_events::stat;

#[derive(Default)]
pub struct Metrics {
    pub events: Counter,
    pub event_errors: Counter,
    pub bytes: Counter,
    pub filtered_bytes: Counter,
    pub connections: Counter,
    pub open_connections: Gauge,
    pub gaps: Counter,
    pub gap_bytes: Counter,
    pub server_side_skipped: Counter,
    pub spans: Counter,
    pub llm_spans: Counter,
    pub exported_spans: Counter,
    pub export_failures: Counter,
    pub spooled_spans: Counter,
    pub dropped_spans: Counter,
    pub spool_bytes: Gauge,
    pub attached_links: Gauge,
    pub attached_files: Gauge,
    pub ring_records: Counter,
    pub ring_drops: Counter,
    pub ring_drop_bytes: Counter,
    pub cap_bytes: Counter,
    pub read_error_bytes: Counter,
    kernel_seen: Mutex<[u64; stat::COUNT as usize]>,
}

impl Metrics {
    /// Folds the kernel side's cumulative counters (summed over CPUs) into the exported counters.
    pub fn sync_kernel(&self, totals: [u64; stat::COUNT as usize]) {
        let Ok(mut seen) = self.kernel_seen.lock() else {
            return;
        };
        let counters = [
            &self.ring_records,
            &self.ring_drops,
            &self.ring_drop_bytes,
            &self.cap_bytes,
            &self.read_error_bytes,
        ];
        for (i, counter) in counters.iter().enumerate() {
            let delta = totals[i].saturating_sub(seen[i]);
            counter.inc_by(delta);
            seen[i] = seen[i].max(totals[i]);
        }
    }

    pub fn render(&self) -> String {
        let mut r = Registry::with_prefix("lumen_sensor");
        let c = |r: &mut Registry, name: &str, help: &str, m: &Counter| {
            r.register(name, help, m.clone())
        };
        c(
            &mut r,
            "events",
            "Ring-buffer records processed",
            &self.events,
        );
        c(
            &mut r,
            "event_errors",
            "Ring-buffer records that could not be parsed",
            &self.event_errors,
        );
        c(&mut r, "bytes", "Payload bytes captured", &self.bytes);
        c(
            &mut r,
            "filtered_bytes",
            "Payload bytes of processes excluded by the filters",
            &self.filtered_bytes,
        );
        c(&mut r, "connections", "Connections seen", &self.connections);
        c(
            &mut r,
            "gaps",
            "Holes in captured streams (each marks a span truncated)",
            &self.gaps,
        );
        c(
            &mut r,
            "gap_bytes",
            "Bytes missing from captured streams",
            &self.gap_bytes,
        );
        c(
            &mut r,
            "server_side_skipped",
            "Connections skipped because the process was the server",
            &self.server_side_skipped,
        );
        c(&mut r, "spans", "Spans decoded", &self.spans);
        c(
            &mut r,
            "llm_spans",
            "Spans decoded that are LLM calls",
            &self.llm_spans,
        );
        c(
            &mut r,
            "exported_spans",
            "Spans accepted by the Lumen server",
            &self.exported_spans,
        );
        c(
            &mut r,
            "export_failures",
            "Failed pushes to the Lumen server",
            &self.export_failures,
        );
        c(
            &mut r,
            "spooled_spans",
            "Spans written to the on-disk spool while the server was unreachable",
            &self.spooled_spans,
        );
        c(
            &mut r,
            "dropped_spans",
            "Spans lost: spool full or export queue full",
            &self.dropped_spans,
        );
        c(
            &mut r,
            "ring_records",
            "Records the BPF programs wrote to the ring buffer",
            &self.ring_records,
        );
        c(
            &mut r,
            "ring_drops",
            "Records the ring buffer had no room for",
            &self.ring_drops,
        );
        c(
            &mut r,
            "ring_drop_bytes",
            "Payload bytes lost to a full ring buffer",
            &self.ring_drop_bytes,
        );
        c(
            &mut r,
            "cap_bytes",
            "Bytes of single calls beyond the per-call capture limit",
            &self.cap_bytes,
        );
        c(
            &mut r,
            "read_error_bytes",
            "Bytes the BPF programs could not read from user memory",
            &self.read_error_bytes,
        );
        r.register(
            "open_connections",
            "Connections being decoded",
            self.open_connections.clone(),
        );
        r.register(
            "spool_bytes",
            "Bytes waiting in the on-disk spool",
            self.spool_bytes.clone(),
        );
        r.register(
            "attached_links",
            "Attached BPF links (tracepoints and uprobes)",
            self.attached_links.clone(),
        );
        r.register(
            "attached_files",
            "Files with TLS uprobes attached",
            self.attached_files.clone(),
        );
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut text, &r);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counters_fold_in_as_deltas() {
        let m = Metrics::default();
        m.sync_kernel([10, 1, 100, 0, 0]);
        m.sync_kernel([15, 1, 100, 7, 0]);
        assert_eq!(m.ring_records.get(), 15);
        assert_eq!(m.ring_drops.get(), 1);
        assert_eq!(m.cap_bytes.get(), 7);
        let text = m.render();
        assert!(text.contains("lumen_sensor_ring_drops_total 1"), "{text}");
        assert!(text.contains("lumen_sensor_attached_links 0"), "{text}");
    }
}
