//! The records the BPF programs write to the ring buffer (`bpf/sensor.h`), parsed into typed events.
//! Parsing checks every length: a record that does not fit its declared shape is an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `sizeof(struct event_header)`.
pub const HEADER_LEN: usize = 88;
/// Payload bytes per DATA record (`CHUNK`).
pub const CHUNK: usize = 16384;

const EV_DATA: u32 = 1;
const EV_SOCK_OPEN: u32 = 2;
const EV_CLOSE: u32 = 3;
const EV_EXEC: u32 = 4;
const EV_EXIT: u32 = 5;

const F_EGRESS: u32 = 1;
const F_TLS: u32 = 2;
const F_LAST: u32 = 4;
const F_ACCEPTED: u32 = 8;

/// Indices of the BPF `stats` array.
/// (records, ring-buffer drops, bytes in those drops, bytes beyond the per-call cap, unreadable bytes).
pub mod stat {
    pub const COUNT: u32 = 5;
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("ring buffer record of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("record kind {kind} declares {declared} payload bytes but carries {present}")]
    Length {
        kind: u32,
        declared: usize,
        present: usize,
    },
    #[error("unknown record kind {0}")]
    Kind(u32),
}

/// Fields every record has.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub tgid: u32,
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// The `SSL*` of TLS records, else the fd.
    pub conn: u64,
    pub fd: Option<i32>,
    pub cgroup: u64,
    /// The thread's name (not necessarily the process's).
    pub comm: String,
}

#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    Data {
        head: Head,
        egress: bool,
        tls: bool,
        /// The last record sent for this call: bytes of the call after it were not captured.
        last: bool,
        pos: u64,
        call_pos: u64,
        call_len: u64,
        bytes: &'a [u8],
    },
    SockOpen {
        head: Head,
        accepted: bool,
        peer: Option<SocketAddr>,
    },
    Close {
        head: Head,
        tls: bool,
    },
    Exec {
        head: Head,
        filename: String,
    },
    Exit {
        head: Head,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub fn parse(record: &[u8]) -> Result<Event<'_>, EventError> {
    if record.len() < HEADER_LEN {
        return Err(EventError::Short(record.len()));
    }
    let kind = u32_at(record, 0);
    let flags = u32_at(record, 4);
    let fd = u32_at(record, 32) as i32;
    let len = u32_at(record, 36) as usize;
    let head = Head {
        tgid: u32_at(record, 8),
        tid: u32_at(record, 12),
        ts_ns: u64_at(record, 16),
        conn: u64_at(record, 24),
        fd: (fd >= 0).then_some(fd),
        cgroup: u64_at(record, 64),
        comm: c_string(&record[72..88]),
    };
    let payload = &record[HEADER_LEN..];
    let declared = match kind {
        // A sockaddr record carries the whole struct even when `len` says less.
        EV_SOCK_OPEN => 24,
        EV_CLOSE | EV_EXIT => 0,
        _ => len,
    };
    if payload.len() < declared || (kind == EV_DATA && len > CHUNK) {
        return Err(EventError::Length {
            kind,
            declared,
            present: payload.len(),
        });
    }
    Ok(match kind {
        EV_DATA => Event::Data {
            head,
            egress: flags & F_EGRESS != 0,
            tls: flags & F_TLS != 0,
            last: flags & F_LAST != 0,
            pos: u64_at(record, 40),
            call_pos: u64_at(record, 48),
            call_len: u64_at(record, 56),
            bytes: &payload[..len],
        },
        EV_SOCK_OPEN => Event::SockOpen {
            head,
            accepted: flags & F_ACCEPTED != 0,
            peer: sockaddr(&payload[..24]),
        },
        EV_CLOSE => Event::Close {
            head,
            tls: flags & F_TLS != 0,
        },
        EV_EXEC => Event::Exec {
            head,
            filename: c_string(&payload[..len]),
        },
        EV_EXIT => Event::Exit { head },
        other => return Err(EventError::Kind(other)),
    })
}

/// `struct sock_addr` (family, port in host order, padding, 16 address bytes).
fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_le_bytes([b[0], b[1]]);
    let port = u16::from_le_bytes([b[2], b[3]]);
    let addr = &b[8..24];
    let ip = match family {
        2 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        10 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            let v6 = Ipv6Addr::from(a);
            // IPv4-mapped addresses are reported as the IPv4 address they are.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32, flags: u32, len: u32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&flags.to_le_bytes());
        b[8..12].copy_from_slice(&42u32.to_le_bytes());
        b[12..16].copy_from_slice(&43u32.to_le_bytes());
        b[16..24].copy_from_slice(&1_000u64.to_le_bytes());
        b[24..32].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        b[32..36].copy_from_slice(&7i32.to_le_bytes());
        b[36..40].copy_from_slice(&len.to_le_bytes());
        b[40..48].copy_from_slice(&100u64.to_le_bytes());
        b[48..56].copy_from_slice(&90u64.to_le_bytes());
        b[56..64].copy_from_slice(&20u64.to_le_bytes());
        b[72..77].copy_from_slice(b"curl\0");
        b
    }

    #[test]
    fn data_record() {
        let mut r = header(EV_DATA, F_EGRESS | F_TLS | F_LAST, 5);
        r.extend_from_slice(b"hello");
        let Event::Data {
            head,
            egress,
            tls,
            last,
            pos,
            call_pos,
            call_len,
            bytes,
        } = parse(&r).unwrap()
        else {
            panic!("not data")
        };
        assert_eq!(
            (head.tgid, head.tid, head.fd, head.comm.as_str()),
            (42, 43, Some(7), "curl")
        );
        assert_eq!(head.conn, 0xdead_beef);
        assert!(egress && tls && last);
        assert_eq!(
            (pos, call_pos, call_len, bytes),
            (100, 90, 20, &b"hello"[..])
        );
    }

    #[test]
    fn sockaddr_v4_and_mapped_v6() {
        let mut r = header(EV_SOCK_OPEN, 0, 24);
        let mut a = vec![2, 0, 0x90, 0x1f, 0, 0, 0, 0, 127, 0, 0, 1];
        a.resize(24, 0);
        r.extend_from_slice(&a);
        let Event::SockOpen { peer, accepted, .. } = parse(&r).unwrap() else {
            panic!()
        };
        assert!(!accepted);
        assert_eq!(peer, Some("127.0.0.1:8080".parse().unwrap()));

        let mut r = header(EV_SOCK_OPEN, F_ACCEPTED, 24);
        let mut a = vec![10, 0, 0xbb, 0x01, 0, 0, 0, 0];
        a.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
        r.extend_from_slice(&a);
        let Event::SockOpen { peer, accepted, .. } = parse(&r).unwrap() else {
            panic!()
        };
        assert!(accepted);
        assert_eq!(peer, Some("10.1.2.3:443".parse().unwrap()));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert_eq!(parse(&[0u8; 10]), Err(EventError::Short(10)));
        let r = header(EV_DATA, 0, 5);
        assert!(matches!(parse(&r), Err(EventError::Length { .. })));
        let mut r = header(EV_DATA, 0, (CHUNK + 1) as u32);
        r.resize(HEADER_LEN + CHUNK + 1, 0);
        assert!(matches!(parse(&r), Err(EventError::Length { .. })));
        assert_eq!(parse(&header(99, 0, 0)), Err(EventError::Kind(99)));
        let mut r = header(EV_EXEC, 0, 9);
        r.extend_from_slice(b"/usr/bin/");
        assert!(matches!(parse(&r), Ok(Event::Exec { filename, .. }) if filename == "/usr/bin/"));
    }
}
