//! Packet captures (pcap and pcapng) → TCP byte streams → the decoder. Handles Ethernet, Linux
//! cooked (SLL, SLL2), BSD loopback (NULL/LOOP) and raw IP link types; reassembles each TCP direction
//! by sequence number (retransmissions trimmed, reordering buffered, holes reported as gaps).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use lumen_decoder::{ConnInfo, Connection, DecoderConfig, Direction, Span};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("{0} is not a pcap or pcapng file")]
    NotPcap(String),
    #[error("{path}: capture is damaged after {packets} packets: {message}")]
    Damaged {
        path: String,
        packets: u64,
        message: String,
    },
}

/// Out-of-order bytes buffered per direction before the missing part is declared lost.
const MAX_PENDING: usize = 8 << 20;

/// One TCP segment, as far as reassembly cares.
struct Segment<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    payload: &'a [u8],
}

fn parse_packet(linktype: Linktype, data: &[u8]) -> Option<Segment<'_>> {
    let sliced = match linktype {
        Linktype::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        Linktype::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        // SLL2 has a 20-byte header whose first field is the EtherType.
        Linktype::LINUX_SLL2 => SlicedPacket::from_ip(data.get(20..)?).ok()?,
        // BSD loopback: a 4-byte address family, then IP.
        Linktype::NULL | Linktype::LOOP => SlicedPacket::from_ip(data.get(4..)?).ok()?,
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => SlicedPacket::from_ip(data).ok()?,
        _ => return None,
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Arp(_) => return None,
    };
    let TransportSlice::Tcp(tcp) = sliced.transport? else {
        return None;
    };
    Some(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    })
}

/// One direction of a TCP connection.
#[derive(Default)]
struct Half {
    /// Sequence number of the next byte to deliver.
    next: Option<u32>,
    /// Segments ahead of `next`, by their offset from `next`'s base.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Absolute offset bookkeeping: `base` is the sequence number of offset 0.
    base: u32,
    delivered: u64,
    fin: bool,
}

impl Half {
    fn offset(&self, seq: u32) -> i64 {
        // Signed distance from the delivery point, wrapping like TCP sequence numbers do.
        let next = self.base.wrapping_add(self.delivered as u32);
        seq.wrapping_sub(next) as i32 as i64 + self.delivered as i64
    }

    /// Accepts a segment; returns the in-order bytes and gaps ready to deliver.
    fn accept(&mut self, seq: u32, payload: &[u8], out: &mut Vec<Chunk>) {
        if self.next.is_none() {
            self.next = Some(seq);
            self.base = seq;
        }
        let offset = self.offset(seq);
        let end = offset + payload.len() as i64;
        if end <= self.delivered as i64 {
            return; // a retransmission of delivered bytes
        }
        let skip = (self.delivered as i64 - offset).max(0) as usize;
        let start = offset.max(self.delivered as i64) as u64;
        if self.pending_bytes < MAX_PENDING || start == self.delivered {
            let entry = self.pending.entry(start).or_default();
            // Keep the longer copy of a retransmitted segment; count only what is stored.
            if entry.len() < payload.len() - skip {
                self.pending_bytes += payload.len() - skip - entry.len();
                *entry = payload[skip..].to_vec();
            }
        }
        self.drain(out, false);
    }

    /// Delivers contiguous pending bytes; with `force`, holes become gaps.
    fn drain(&mut self, out: &mut Vec<Chunk>, force: bool) {
        let force = force || self.pending_bytes > MAX_PENDING;
        while let Some((&start, _)) = self.pending.iter().next() {
            if start > self.delivered {
                if !force {
                    break;
                }
                out.push(Chunk::Gap(start - self.delivered));
                self.delivered = start;
            }
            let Some(bytes) = self.pending.remove(&start) else {
                break;
            };
            self.pending_bytes -= bytes.len();
            let skip = (self.delivered - start) as usize;
            if skip < bytes.len() {
                self.delivered += (bytes.len() - skip) as u64;
                out.push(Chunk::Data(bytes[skip..].to_vec()));
            }
        }
    }
}

enum Chunk {
    Data(Vec<u8>),
    Gap(u64),
}

struct Flow {
    client: SocketAddr,
    connection: Connection,
    halves: [Half; 2], // [to server, to client]
    last_ts: i64,
    closed: bool,
}

/// Decodes a capture into spans.
pub struct Replayer {
    config: Arc<DecoderConfig>,
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    spans: Vec<Span>,
    next_key: u64,
}

fn looks_like_request(payload: &[u8]) -> bool {
    const STARTS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"PATCH ",
        b"HEAD ",
        b"OPTIONS ",
        b"PRI * HTTP/2",
    ];
    STARTS.iter().any(|s| payload.starts_with(s))
}

impl Replayer {
    pub fn new(config: Arc<DecoderConfig>) -> Replayer {
        Replayer {
            config,
            flows: HashMap::new(),
            spans: Vec::new(),
            next_key: 1,
        }
    }

    fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
        if a <= b { (a, b) } else { (b, a) }
    }

    fn segment(&mut self, ts: i64, segment: Segment<'_>) {
        let key = Self::key(segment.src, segment.dst);
        if segment.syn && !segment.ack {
            // A new connection on this 4-tuple replaces a finished one.
            if let Some(mut old) = self.flows.remove(&key) {
                self.finish(&mut old, ts);
            }
        }
        if !self.flows.contains_key(&key) {
            if segment.payload.is_empty() && !segment.syn {
                return; // a bare ACK of a connection whose start was not captured
            }
            // The client is the SYN sender; without the handshake, the side that sends a request.
            let client = if segment.syn {
                if segment.ack {
                    segment.dst
                } else {
                    segment.src
                }
            } else if looks_like_request(segment.payload) {
                segment.src
            } else if segment.payload.starts_with(b"HTTP/") {
                segment.dst
            } else if segment.src.port() > segment.dst.port() {
                segment.src
            } else {
                segment.dst
            };
            let server = if client == segment.src {
                segment.dst
            } else {
                segment.src
            };
            let info = ConnInfo {
                key: self.next_key,
                peer_address: Some(server.ip().to_string()),
                peer_port: Some(server.port()),
                local_address: Some(client.ip().to_string()),
                tls_library: Some("plaintext".into()),
                from_start: segment.syn,
            };
            self.next_key += 1;
            self.flows.insert(
                key,
                Flow {
                    client,
                    connection: Connection::new(self.config.clone(), info),
                    halves: [Half::default(), Half::default()],
                    last_ts: ts,
                    closed: false,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ts = flow.last_ts.max(ts);
        let to_server = segment.src == flow.client;
        let direction = if to_server {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let half = &mut flow.halves[usize::from(!to_server)];
        let mut chunks = Vec::new();
        if segment.syn {
            // Data starts one past the SYN's sequence number.
            half.next = Some(segment.seq.wrapping_add(1));
            half.base = segment.seq.wrapping_add(1);
            half.delivered = 0;
        }
        if !segment.payload.is_empty() {
            half.accept(segment.seq, segment.payload, &mut chunks);
        }
        if segment.fin {
            half.fin = true;
        }
        for chunk in chunks {
            match chunk {
                Chunk::Data(bytes) => flow.connection.data(direction, ts, &bytes),
                Chunk::Gap(len) => flow.connection.gap(direction, ts, len),
            }
        }
        self.spans.extend(flow.connection.take_spans());
        let both_done = flow.halves.iter().all(|h| h.fin);
        if (segment.rst || both_done)
            && let Some(mut flow) = self.flows.remove(&key)
        {
            self.finish(&mut flow, ts);
        }
    }

    fn finish(&mut self, flow: &mut Flow, ts: i64) {
        if flow.closed {
            return;
        }
        for (i, half) in flow.halves.iter_mut().enumerate() {
            let direction = if i == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let mut chunks = Vec::new();
            half.drain(&mut chunks, true);
            for chunk in chunks {
                match chunk {
                    Chunk::Data(bytes) => flow.connection.data(direction, ts, &bytes),
                    Chunk::Gap(len) => flow.connection.gap(direction, ts, len),
                }
            }
        }
        flow.connection.close(ts.max(flow.last_ts));
        flow.closed = true;
        self.spans.extend(flow.connection.take_spans());
    }

    /// Ends every open connection (the capture ended) and returns all spans by start time.
    pub fn finish_all(mut self) -> Vec<Span> {
        let keys: Vec<_> = self.flows.keys().copied().collect();
        for key in keys {
            if let Some(mut flow) = self.flows.remove(&key) {
                let ts = flow.last_ts;
                self.finish(&mut flow, ts);
            }
        }
        self.spans.sort_by_key(|s| s.start_time);
        self.spans
    }

    /// Reads a pcap or pcapng stream and decodes every TCP connection in it.
    pub fn read(&mut self, path: &str, input: impl Read + Send) -> Result<u64, ReplayError> {
        let mut reader = pcap_parser::create_reader(1 << 20, input)
            .map_err(|_| ReplayError::NotPcap(path.to_string()))?;
        let mut packets = 0u64;
        let mut legacy: Option<(Linktype, bool)> = None;
        // pcapng interfaces: link type, units per second, offset.
        let mut interfaces: Vec<(Linktype, u64, i64)> = Vec::new();
        loop {
            match reader.next() {
                Ok((used, block)) => {
                    let packet: Option<(Linktype, i64, &[u8])> = match block {
                        PcapBlockOwned::LegacyHeader(header) => {
                            legacy = Some((header.network, header.is_nanosecond_precision()));
                            None
                        }
                        PcapBlockOwned::Legacy(frame) => legacy.map(|(linktype, nanos)| {
                            let fraction = if nanos {
                                frame.ts_usec as i64
                            } else {
                                frame.ts_usec as i64 * 1000
                            };
                            let caplen = (frame.caplen as usize).min(frame.data.len());
                            (
                                linktype,
                                frame.ts_sec as i64 * 1_000_000_000 + fraction,
                                &frame.data[..caplen],
                            )
                        }),
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            interfaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            interfaces.push((
                                idb.linktype,
                                idb.ts_resolution().unwrap_or(1_000_000),
                                idb.ts_offset(),
                            ));
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => interfaces
                            .get(epb.if_id as usize)
                            .map(|&(linktype, resolution, offset)| {
                                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let ns = (units as u128 * 1_000_000_000
                                    / u128::from(resolution.max(1)))
                                    as i64;
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                (
                                    linktype,
                                    ns.saturating_add(offset.saturating_mul(1_000_000_000)),
                                    &epb.data[..caplen],
                                )
                            }),
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => interfaces
                            .first()
                            .map(|&(linktype, ..)| (linktype, 0, spb.data)),
                        PcapBlockOwned::NG(_) => None,
                    };
                    if let Some((linktype, ts, data)) = packet {
                        packets += 1;
                        if let Some(segment) = parse_packet(linktype, data) {
                            // Segments borrow the reader's buffer; decode before consuming it.
                            self.segment(ts, segment);
                        }
                    }
                    reader.consume(used);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => {
                    if reader.refill().is_err() {
                        return Err(ReplayError::Damaged {
                            path: path.to_string(),
                            packets,
                            message: "read error".into(),
                        });
                    }
                }
                Err(e) => {
                    return Err(ReplayError::Damaged {
                        path: path.to_string(),
                        packets,
                        message: format!("{e:?}"),
                    });
                }
            }
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(half: &mut Half, segments: &[(u32, &[u8])]) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        for (seq, payload) in segments {
            half.accept(*seq, payload, &mut out);
        }
        half.drain(&mut out, true);
        let mut bytes = Vec::new();
        let mut gaps = 0;
        for chunk in out {
            match chunk {
                Chunk::Data(b) => bytes.extend(b),
                Chunk::Gap(n) => gaps += n,
            }
        }
        (bytes, gaps)
    }

    #[test]
    fn reassembly_reorders_trims_retransmissions_and_reports_holes() {
        let mut half = Half::default();
        let (bytes, gaps) = collect(
            &mut half,
            &[
                (1000, b"hello "),
                (1010, b"d!"),
                (1006, b"world"),
                (1000, b"hello "),
                (1008, b"rld"),
            ],
        );
        assert_eq!((bytes.as_slice(), gaps), (&b"hello world!"[..], 0));
        // Sequence numbers wrap around 2^32.
        let mut half = Half::default();
        let (bytes, gaps) = collect(&mut half, &[(u32::MAX - 2, b"abc"), (0, b"def")]);
        assert_eq!((bytes.as_slice(), gaps), (&b"abcdef"[..], 0));
        // An out-of-order segment retransmitted before the hole fills is stored and counted once.
        let mut half = Half::default();
        let (bytes, gaps) = collect(&mut half, &[(1, b"ab"), (5, b"ef"), (5, b"ef"), (3, b"cd")]);
        assert_eq!((bytes.as_slice(), gaps), (&b"abcdef"[..], 0));
        assert_eq!(half.pending_bytes, 0);
        let mut half = Half::default();
        let (bytes, gaps) = collect(&mut half, &[(1, b"ab"), (10, b"xy")]);
        assert_eq!((bytes.as_slice(), gaps), (&b"abxy"[..], 7));
    }
}
