//! From ring-buffer events to spans: one decoder per connection (a TLS session keyed by its `SSL*`, or a
//! plaintext socket keyed by its fd), fed in stream order. Stream positions carried by each record expose
//! every byte the kernel side could not deliver; those become gaps for the decoder (the span is marked
//! `truncated`) and are counted, never papered over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lumen_decoder::{ConnInfo, Connection, DecoderConfig, Direction, Span};

use crate::bpf_events::{Event, Head};
use crate::metrics::Metrics;
use crate::procs::{Filters, ProcessInfo, ProcessTable};

/// Converts CLOCK_MONOTONIC (BPF timestamps) to Unix nanoseconds.
#[derive(Clone, Copy)]
pub struct Clock {
    offset: i64,
}

impl Clock {
    pub fn now() -> Clock {
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let real = clock_ns(libc::CLOCK_REALTIME);
        Clock {
            offset: real - mono,
        }
    }

    pub fn unix_ns(&self, mono: u64) -> i64 {
        (mono as i64).saturating_add(self.offset)
    }
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    tgid: u32,
    tls: bool,
    /// `SSL*` or fd.
    conn: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Client,
    Server,
}

struct SockInfo {
    peer: Option<SocketAddr>,
    accepted: bool,
}

struct Conn {
    tls: bool,
    role: Option<Role>,
    /// The serving side of a call, not captured (its client, if on this node, is).
    ignored: bool,
    /// Bytes seen before the role was known: (egress, ts, bytes).
    held: Vec<(bool, i64, Vec<u8>)>,
    held_bytes: usize,
    decoder: Option<Connection>,
    /// Next expected stream position: [ingress, egress].
    next: [Option<u64>; 2],
    fd: Option<i32>,
    /// The connection's identity in span ids: the process, the `SSL*` or fd, and when it was first seen.
    id: [u64; 3],
    peer: Option<SocketAddr>,
    from_start: bool,
    last_seen: Instant,
    process: Arc<ProcessInfo>,
}

/// Bytes held while deciding which side of a connection the process is on.
const ROLE_DETECT_LIMIT: usize = 64 * 1024;
/// Connections silent for this long are closed (their open exchanges end as truncated).
const IDLE: Duration = Duration::from_secs(300);

pub struct Tracker {
    config: Arc<DecoderConfig>,
    clock: Clock,
    capture_server: bool,
    filters: Filters,
    pub processes: ProcessTable,
    conns: HashMap<ConnKey, Conn>,
    sockets: HashMap<(u32, i32), SockInfo>,
    /// The TLS session seen on a socket, closed with it.
    tls_by_fd: HashMap<(u32, i32), u64>,
    host: Option<String>,
    metrics: Arc<Metrics>,
    /// Processes found to be filtered out (user space tells BPF to skip them).
    pub newly_excluded: Vec<u32>,
}

impl Tracker {
    pub fn new(
        config: Arc<DecoderConfig>,
        filters: Filters,
        capture_server: bool,
        metrics: Arc<Metrics>,
    ) -> Tracker {
        Tracker {
            config,
            clock: Clock::now(),
            capture_server,
            filters,
            processes: ProcessTable::default(),
            conns: HashMap::new(),
            sockets: HashMap::new(),
            tls_by_fd: HashMap::new(),
            host: hostname(),
            metrics,
            newly_excluded: Vec::new(),
        }
    }

    /// Handles one event; finished spans are appended to `out`.
    pub fn event(&mut self, event: Event<'_>, out: &mut Vec<Span>) {
        match event {
            Event::Data {
                head,
                egress,
                tls,
                last,
                pos,
                call_pos,
                call_len,
                bytes,
            } => self.data(
                &head,
                egress,
                tls,
                last,
                pos,
                call_pos.saturating_add(call_len),
                bytes,
                out,
            ),
            Event::SockOpen {
                head,
                accepted,
                peer,
            } => {
                let Some(fd) = head.fd else { return };
                // A socket number reused without the close being seen: the old connection is over.
                self.close_conn(head.tgid, false, fd as u64, &head, out);
                self.sockets
                    .insert((head.tgid, fd), SockInfo { peer, accepted });
            }
            Event::Close { head, tls } => {
                if tls && head.fd.is_none() {
                    // SSL_free / SSL_shutdown of a session.
                    self.close_conn(head.tgid, true, head.conn, &head, out);
                    return;
                }
                let Some(fd) = head.fd else { return };
                self.sockets.remove(&(head.tgid, fd));
                self.close_conn(head.tgid, false, fd as u64, &head, out);
                if let Some(ssl) = self.tls_by_fd.remove(&(head.tgid, fd)) {
                    self.close_conn(head.tgid, true, ssl, &head, out);
                }
            }
            Event::Exec { head, filename } => {
                self.close_process(head.tgid, &head, out);
                let info = self.processes.exec(head.tgid, &filename, &head.comm);
                if !self.filters.allows(&info) {
                    self.newly_excluded.push(head.tgid);
                }
            }
            Event::Exit { head } => {
                self.close_process(head.tgid, &head, out);
                self.processes.exit(head.tgid);
                self.sockets.retain(|(tgid, _), _| *tgid != head.tgid);
                self.tls_by_fd.retain(|(tgid, _), _| *tgid != head.tgid);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        head: &Head,
        egress: bool,
        tls: bool,
        last: bool,
        pos: u64,
        call_end: u64,
        bytes: &[u8],
        out: &mut Vec<Span>,
    ) {
        let ts = self.clock.unix_ns(head.ts_ns);
        tracing::trace!(
            tgid = head.tgid,
            conn = head.conn,
            fd = ?head.fd,
            egress,
            tls,
            pos,
            len = bytes.len(),
            start = %String::from_utf8_lossy(&bytes[..bytes.len().min(40)]),
            "data"
        );
        let key = ConnKey {
            tgid: head.tgid,
            tls,
            conn: head.conn,
        };
        if !self.conns.contains_key(&key) {
            let process = self.processes.get(head.tgid, &head.comm);
            if !self.filters.allows(&process) {
                self.metrics.filtered_bytes.inc_by(bytes.len() as u64);
                if !self.newly_excluded.contains(&head.tgid) {
                    self.newly_excluded.push(head.tgid);
                }
                return;
            }
            let sock = head.fd.and_then(|fd| self.sockets.get(&(head.tgid, fd)));
            let from_start = sock.is_some() && pos == 0;
            let (peer, role) = match sock {
                Some(s) => (
                    s.peer,
                    Some(if s.accepted {
                        Role::Server
                    } else {
                        Role::Client
                    }),
                ),
                None => (head.fd.and_then(|fd| socket_peer(head.tgid, fd)), None),
            };
            self.metrics.connections.inc();
            self.conns.insert(
                key,
                Conn {
                    tls,
                    role,
                    ignored: false,
                    held: Vec::new(),
                    held_bytes: 0,
                    decoder: None,
                    next: [None, None],
                    fd: head.fd,
                    id: [u64::from(head.tgid), head.conn, head.ts_ns],
                    peer,
                    from_start,
                    last_seen: Instant::now(),
                    process,
                },
            );
        }
        if tls && let Some(fd) = head.fd {
            self.tls_by_fd.insert((head.tgid, fd), head.conn);
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.last_seen = Instant::now();
        if conn.fd.is_none() {
            conn.fd = head.fd;
            if conn.peer.is_none() {
                conn.peer = head.fd.and_then(|fd| socket_peer(head.tgid, fd));
            }
        }
        self.metrics.bytes.inc_by(bytes.len() as u64);

        // Stream positions: a jump is bytes the kernel side could not deliver.
        let dir = usize::from(egress);
        let expected = conn.next[dir].unwrap_or(pos);
        let mut bytes = bytes;
        if pos > expected {
            conn.gap(egress, ts, pos - expected, &self.metrics);
        } else if pos < expected {
            let overlap = (expected - pos) as usize;
            bytes = bytes.get(overlap..).unwrap_or(&[]);
        }
        let end = pos.max(expected).saturating_add(bytes.len() as u64);
        conn.next[dir] = Some(end);
        conn.feed(
            egress,
            ts,
            bytes,
            self.config.clone(),
            self.capture_server,
            &self.metrics,
        );
        if last && end < call_end {
            // The rest of this call was beyond the per-call capture limit or found no room.
            conn.gap(egress, ts, call_end - end, &self.metrics);
            conn.next[dir] = Some(call_end);
        }
        let host = self.host.clone();
        conn.drain(out, host.as_deref(), &self.metrics);
    }

    fn close_conn(&mut self, tgid: u32, tls: bool, conn: u64, head: &Head, out: &mut Vec<Span>) {
        self.close_key(ConnKey { tgid, tls, conn }, head, out);
    }

    fn close_key(&mut self, key: ConnKey, head: &Head, out: &mut Vec<Span>) {
        if let Some(mut conn) = self.conns.remove(&key) {
            let ts = self.clock.unix_ns(head.ts_ns);
            conn.finish(ts, self.config.clone(), self.capture_server, &self.metrics);
            conn.drain(out, self.host.as_deref(), &self.metrics);
        }
    }

    fn close_process(&mut self, tgid: u32, head: &Head, out: &mut Vec<Span>) {
        let keys: Vec<_> = self
            .conns
            .keys()
            .filter(|k| k.tgid == tgid)
            .copied()
            .collect();
        for key in keys {
            self.close_key(key, head, out);
        }
    }

    /// Closes connections idle for too long, or all of them (`all`, at shutdown).
    pub fn sweep(&mut self, all: bool, out: &mut Vec<Span>) {
        let now_ns = self.clock.unix_ns(clock_ns(libc::CLOCK_MONOTONIC) as u64);
        let keys: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, c)| all || c.last_seen.elapsed() > IDLE)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(mut conn) = self.conns.remove(&key) {
                conn.finish(
                    now_ns,
                    self.config.clone(),
                    self.capture_server,
                    &self.metrics,
                );
                conn.drain(out, self.host.as_deref(), &self.metrics);
            }
        }
        self.metrics.open_connections.set(self.conns.len() as i64);
    }
}

impl Conn {
    fn direction(&self, egress: bool) -> Direction {
        match (self.role, egress) {
            (Some(Role::Server), true) | (Some(Role::Client) | None, false) => Direction::ToClient,
            _ => Direction::ToServer,
        }
    }

    fn gap(&mut self, egress: bool, ts: i64, len: u64, metrics: &Metrics) {
        metrics.gaps.inc();
        metrics.gap_bytes.inc_by(len);
        let direction = self.direction(egress);
        match &mut self.decoder {
            Some(d) => d.gap(direction, ts, len),
            // Before the role is known a gap means the start is missing: drop what is held and resync.
            None => {
                self.held.clear();
                self.held_bytes = 0;
                self.from_start = false;
            }
        }
    }

    fn feed(
        &mut self,
        egress: bool,
        ts: i64,
        bytes: &[u8],
        config: Arc<DecoderConfig>,
        capture_server: bool,
        metrics: &Metrics,
    ) {
        if bytes.is_empty() || self.ignored {
            return;
        }
        if self.decoder.is_none() {
            if self.role.is_none() {
                self.role = sniff_role(egress, bytes);
            }
            if self.role.is_none() && self.held_bytes + bytes.len() <= ROLE_DETECT_LIMIT {
                self.held.push((egress, ts, bytes.to_vec()));
                self.held_bytes += bytes.len();
                return;
            }
            self.start_decoder(config, capture_server, metrics);
        }
        let direction = self.direction(egress);
        if let Some(d) = &mut self.decoder {
            d.data(direction, ts, bytes);
        }
    }

    fn start_decoder(
        &mut self,
        config: Arc<DecoderConfig>,
        capture_server: bool,
        metrics: &Metrics,
    ) {
        if self.role == Some(Role::Server) && !capture_server {
            metrics.server_side_skipped.inc();
            self.held.clear();
            self.held_bytes = 0;
            self.ignored = true;
            return;
        }
        let info = ConnInfo {
            key: self.key_hash(),
            peer_address: self.peer.map(|p| p.ip().to_string()),
            peer_port: self.peer.map(|p| p.port()),
            local_address: None,
            tls_library: Some(if self.tls { "openssl" } else { "plaintext" }.into()),
            from_start: self.from_start,
        };
        let mut decoder = Connection::new(config, info);
        for (egress, ts, bytes) in std::mem::take(&mut self.held) {
            let direction = self.direction(egress);
            decoder.data(direction, ts, &bytes);
        }
        self.held_bytes = 0;
        self.decoder = Some(decoder);
    }

    fn key_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for v in self.id {
            h ^= v;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    fn finish(
        &mut self,
        ts: i64,
        config: Arc<DecoderConfig>,
        capture_server: bool,
        metrics: &Metrics,
    ) {
        if self.decoder.is_none() && !self.held.is_empty() && !self.ignored {
            self.role.get_or_insert(Role::Client);
            self.start_decoder(config, capture_server, metrics);
        }
        if let Some(d) = &mut self.decoder {
            d.close(ts);
        }
    }

    fn drain(&mut self, out: &mut Vec<Span>, host: Option<&str>, metrics: &Metrics) {
        let Some(d) = &mut self.decoder else { return };
        for mut span in d.take_spans() {
            let p = &self.process;
            span.pid = Some(p.pid);
            span.process_name = Some(p.name.clone());
            span.exe = p.exe.clone();
            span.container_id = p.container_id.clone();
            span.host = host.map(str::to_string);
            if span.service_name.is_none() {
                span.service_name = Some(p.name.clone());
            }
            if let Some(uid) = &p.pod_uid {
                span.attributes.insert("k8s.pod.uid".into(), uid.clone());
            }
            metrics.spans.inc();
            if span.is_llm() {
                metrics.llm_spans.inc();
            }
            out.push(span);
        }
    }
}

/// Which side the process is on, from the first bytes it wrote or read: a request line or the HTTP/2
/// preface is written by clients; a status line by servers.
fn sniff_role(egress: bool, bytes: &[u8]) -> Option<Role> {
    let request = bytes.starts_with(b"PRI * HTTP/2.0")
        || [
            "GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "HEAD ", "OPTIONS ",
        ]
        .iter()
        .any(|m| bytes.starts_with(m.as_bytes()));
    let response = bytes.starts_with(b"HTTP/1.");
    match (request, response, egress) {
        (true, _, true) | (_, true, false) => Some(Role::Client),
        (true, _, false) | (_, true, true) => Some(Role::Server),
        _ => None,
    }
}

/// The peer of socket `fd` of process `pid`, from /proc (sockets opened before the sensor started).
fn socket_peer(pid: u32, fd: i32) -> Option<SocketAddr> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_str()?;
    let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(9) == Some(&inode) {
                return cols.get(2).and_then(|a| parse_proc_addr(a));
            }
        }
    }
    None
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6), as /proc/net/tcp{,6} print them.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => {
            let v = u32::from_str_radix(addr, 16).ok()?;
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(v.to_le_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            let v6 = std::net::Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => std::net::IpAddr::V4(v4),
                None => std::net::IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 62\r\n\r\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    fn response() -> String {
        let body = r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn head(ts: u64) -> Head {
        Head {
            tgid: std::process::id(),
            tid: std::process::id(),
            ts_ns: ts,
            conn: 7,
            fd: Some(7),
            cgroup: 0,
            comm: "worker-thread".into(),
        }
    }

    fn data(ts: u64, egress: bool, pos: u64, bytes: &[u8]) -> Event<'_> {
        Event::Data {
            head: head(ts),
            egress,
            tls: false,
            last: true,
            pos,
            call_pos: pos,
            call_len: bytes.len() as u64,
            bytes,
        }
    }

    fn tracker(capture_server: bool) -> (Tracker, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let t = Tracker::new(
            Arc::new(DecoderConfig::default()),
            Filters::default(),
            capture_server,
            metrics.clone(),
        );
        (t, metrics)
    }

    fn open(accepted: bool) -> Event<'static> {
        Event::SockOpen {
            head: head(1),
            accepted,
            peer: Some("127.0.0.1:8080".parse().unwrap()),
        }
    }

    #[test]
    fn a_plaintext_call_becomes_one_enriched_span() {
        let (mut t, metrics) = tracker(false);
        let mut out = Vec::new();
        t.event(open(false), &mut out);
        t.event(data(10, true, 0, REQUEST.as_bytes()), &mut out);
        let resp = response();
        t.event(data(20, false, 0, resp.as_bytes()), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let span = &out[0];
        assert_eq!(span.pid, Some(std::process::id()));
        // The process's name, not the thread's.
        assert_ne!(span.process_name.as_deref(), Some("worker-thread"));
        assert_eq!(span.server_port, Some(8080));
        assert_eq!(span.tls_library.as_deref(), Some("plaintext"));
        assert_eq!(span.output_tokens, Some(1));
        assert!(span.capture_flags.is_empty(), "{:?}", span.capture_flags);
        assert_eq!(metrics.gaps.get(), 0);
    }

    #[test]
    fn a_position_jump_is_a_counted_gap_and_a_truncated_span() {
        let (mut t, metrics) = tracker(false);
        let mut out = Vec::new();
        t.event(open(false), &mut out);
        t.event(data(10, true, 0, REQUEST.as_bytes()), &mut out);
        let resp = response();
        let (first, rest) = resp.as_bytes().split_at(100);
        t.event(data(20, false, 0, first), &mut out);
        // 20 bytes never arrived (the ring buffer was full).
        t.event(data(30, false, 120, &rest[20..]), &mut out);
        t.event(
            Event::Close {
                head: head(40),
                tls: false,
            },
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].has_flag("truncated"), "{:?}", out[0].capture_flags);
        assert_eq!(
            out[0].output_tokens, None,
            "no numbers from a body with a hole"
        );
        assert_eq!(metrics.gaps.get(), 1);
        assert_eq!(metrics.gap_bytes.get(), 20);
    }

    #[test]
    fn bytes_a_call_could_not_ship_are_a_gap() {
        let (mut t, metrics) = tracker(false);
        let mut out = Vec::new();
        t.event(open(false), &mut out);
        let request = REQUEST.as_bytes();
        // One write of the whole request of which only the first 120 bytes were captured.
        t.event(
            Event::Data {
                head: head(10),
                egress: true,
                tls: false,
                last: true,
                pos: 0,
                call_pos: 0,
                call_len: request.len() as u64,
                bytes: &request[..120],
            },
            &mut out,
        );
        let resp = response();
        t.event(data(20, false, 0, resp.as_bytes()), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].has_flag("truncated"));
        assert_eq!(out[0].output_tokens, Some(1), "the response is still whole");
        assert_eq!(metrics.gap_bytes.get(), (request.len() - 120) as u64);
    }

    #[test]
    fn the_serving_side_is_skipped_unless_asked_for() {
        for capture_server in [false, true] {
            let (mut t, metrics) = tracker(capture_server);
            let mut out = Vec::new();
            t.event(open(true), &mut out);
            t.event(data(10, false, 0, REQUEST.as_bytes()), &mut out);
            let resp = response();
            t.event(data(20, true, 0, resp.as_bytes()), &mut out);
            assert_eq!(out.len(), usize::from(capture_server), "{out:?}");
            assert_eq!(
                metrics.server_side_skipped.get(),
                u64::from(!capture_server)
            );
        }
    }

    #[test]
    fn a_process_excluded_by_the_filters_is_handed_back_to_the_kernel_side() {
        let metrics = Arc::new(Metrics::default());
        let mut t = Tracker::new(
            Arc::new(DecoderConfig::default()),
            Filters {
                exclude_pids: vec![std::process::id()],
                ..Filters::default()
            },
            false,
            metrics.clone(),
        );
        let mut out = Vec::new();
        t.event(data(10, true, 0, REQUEST.as_bytes()), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.newly_excluded, vec![std::process::id()]);
        assert!(metrics.filtered_bytes.get() > 0);
    }

    #[test]
    fn roles_from_first_bytes() {
        assert_eq!(
            sniff_role(true, b"POST /v1/chat HTTP/1.1\r\n"),
            Some(Role::Client)
        );
        assert_eq!(
            sniff_role(false, b"POST /v1/chat HTTP/1.1\r\n"),
            Some(Role::Server)
        );
        assert_eq!(
            sniff_role(false, b"HTTP/1.1 200 OK\r\n"),
            Some(Role::Client)
        );
        assert_eq!(
            sniff_role(true, b"PRI * HTTP/2.0\r\n\r\nSM"),
            Some(Role::Client)
        );
        assert_eq!(sniff_role(true, b"\x00\x00\x12\x04"), None);
    }

    #[test]
    fn proc_net_addresses() {
        assert_eq!(
            parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("0000000000000000FFFF00000100007F:01BB"),
            Some("127.0.0.1:443".parse().unwrap())
        );
        assert_eq!(parse_proc_addr("zz:1"), None);
        assert_eq!(parse_proc_addr("0100007F"), None);
    }
}
