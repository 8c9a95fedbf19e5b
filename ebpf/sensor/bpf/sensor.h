/* Records the BPF programs put in the `events` ring buffer. The Rust side parses them in src/bpf_events.rs;
 * keep the two in step (field order, sizes, and the constants below). Everything is little-endian, no
 * implicit padding. */
#ifndef LUMEN_SENSOR_H
#define LUMEN_SENSOR_H

/* Bytes of payload per DATA record; larger buffers are split into several records. */
#define CHUNK 16384
/* Records per captured call (CHUNK * MAX_CHUNKS bytes per read/write); the rest becomes a gap. */
#define MAX_CHUNKS 16
/* Bytes of exec file name carried by an EXEC record. */
#define PATH_MAX_BYTES 256

enum event_kind {
	EV_DATA = 1,      /* bytes read or written on a connection */
	EV_SOCK_OPEN = 2, /* connect()/accept() on an INET socket: payload is a struct sock_addr */
	EV_CLOSE = 3,     /* close(fd) of a tracked socket, or SSL_free/SSL_shutdown */
	EV_EXEC = 4,      /* a process image started: payload is the file name */
	EV_EXIT = 5,      /* a process (thread group) ended */
};

/* header.flags */
#define F_EGRESS 1u      /* DATA: written by the process (else read) */
#define F_TLS 2u         /* DATA/CLOSE: plaintext of a TLS library call; `conn` is the SSL* */
#define F_LAST 4u        /* DATA: the last record of this call that was sent */
#define F_ACCEPTED 8u    /* SOCK_OPEN: the process accepted the connection (it is the server) */

struct event_header {
	__u32 kind;
	__u32 flags;
	__u32 tgid;
	__u32 tid;
	__u64 ts_ns;    /* CLOCK_MONOTONIC */
	__u64 conn;     /* SSL* for TLS records, else the fd */
	__s32 fd;       /* -1 when not known */
	__u32 len;      /* payload bytes following the header */
	__u64 pos;      /* DATA: stream position of payload[0] in this direction */
	__u64 call_pos; /* DATA: stream position of the call's first byte */
	__u64 call_len; /* DATA: bytes the call transferred (some may not have been captured) */
	__u64 cgroup;   /* cgroup v2 id */
	char comm[16];  /* thread name */
};

struct sock_addr {
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 port;   /* host order */
	__u32 _pad;
	__u8 addr[16];
};

/* Indices into the per-CPU `stats` array. */
enum stat {
	ST_RECORDS = 0,       /* records written to the ring buffer */
	ST_RING_DROPS = 1,    /* records the ring buffer had no room for */
	ST_RING_DROP_BYTES = 2,
	ST_CAP_BYTES = 3,     /* bytes beyond CHUNK * MAX_CHUNKS of one call */
	ST_READ_ERRORS = 4,   /* bpf_probe_read_user failures (bytes counted as lost) */
	ST_COUNT = 5,
};

#endif
