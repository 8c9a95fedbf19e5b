// SPDX-License-Identifier: GPL-2.0
/* Lumen's capture programs: plaintext of TLS library calls (uprobes on SSL_read/SSL_write and their _ex
 * forms), plaintext HTTP on INET sockets (syscall tracepoints), socket open/close, and process exec/exit.
 * Everything goes out through one ring buffer as the records of sensor.h; decoding is user space's job.
 *
 * Connections that carry TLS are captured once: a syscall made inside an SSL_* call marks its fd as TLS
 * (the nested-syscall technique), and a socket whose first bytes are a TLS record is marked too, so the
 * syscall programs never ship ciphertext. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sensor.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before the programs load. */
const volatile __u32 self_tgid = 0;       /* the sensor itself: never captured */
const volatile __u32 capture_server = 0;  /* also track accepted sockets (server side) */
const volatile __u64 wake_threshold = 1 << 20;

#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115

enum op {
	OP_WRITE = 1,
	OP_READ = 2,
	OP_WRITE_EX = 3,
	OP_READ_EX = 4,
	OP_WRITEV = 5,
	OP_READV = 6,
	OP_SENDMSG = 7,
	OP_RECVMSG = 8,
	OP_CONNECT = 9,
	OP_ACCEPT = 10,
};

/* An SSL_* call in flight on a thread. */
struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out_len; /* size_t * of the _ex forms */
	__u64 ts;
	__s32 fd;      /* learned from a syscall made inside the call */
	__u32 op;
};

/* A syscall in flight on a thread. */
struct sys_call {
	__u64 buf;     /* buffer, iovec array, msghdr or sockaddr */
	__u64 ts;
	__s32 fd;
	__u32 op;
	__u64 count;   /* iovcnt for readv/writev */
};

struct sock_key {
	__u32 tgid;
	__s32 fd;
};

/* UNKNOWN until the first bytes: then TLS (skipped: its plaintext comes from the uprobes), PLAIN (HTTP,
 * captured) or OTHER (databases, caches, ...: skipped, so they never load the ring buffer). */
enum sock_state { SOCK_UNKNOWN = 0, SOCK_PLAIN = 1, SOCK_TLS = 2, SOCK_OTHER = 3 };

struct sock_val {
	__u32 state;
	__u32 accepted;
};

struct pos_key {
	__u32 tgid;
	__u32 flags; /* F_EGRESS | F_TLS */
	__u64 conn;
};

struct data_event {
	struct event_header h;
	__u8 data[CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sys_call);
} sys_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_key);
	__type(value, struct sock_val);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct pos_key);
	__type(value, __u64);
} stream_pos SEC(".maps");

/* Processes not to capture (the loader adds the sensor; filters add more). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} excluded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);
	if (v)
		*v += n;
}

static __always_inline int skip_process(__u32 tgid)
{
	return tgid == self_tgid || bpf_map_lookup_elem(&excluded, &tgid) != 0;
}

/* Wake the reader only when a lot is waiting; it also polls on a short timer (batched wake-ups). */
static __always_inline __u64 wake_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_threshold ? BPF_RB_FORCE_WAKEUP
										 : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_header(struct event_header *h, __u32 kind, __u32 flags, __u64 conn,
					__s32 fd, __u64 ts)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->flags = flags;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->ts_ns = ts;
	h->conn = conn;
	h->fd = fd;
	h->len = 0;
	h->pos = 0;
	h->call_pos = 0;
	h->call_len = 0;
	h->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Ships `total` bytes at user address `buf` as DATA records of at most CHUNK bytes, each carrying its
 * stream position; bytes that cannot be copied or have no room are counted, and the position still
 * advances past them so user space sees the exact gap. */
#define FD_FLAGS(fd, flags) (((__u64)(__u32)(fd) << 32) | (flags))

/* A global (not inlined) function: the verifier checks it once, not once per caller and loop. */
__noinline int emit_data(__u64 conn, __u64 fd_flags, __u64 ts, __u64 buf, __u64 total)
{
	/* At most five arguments: the fd rides in the upper half of the flags. */
	__s32 fd = (__s32)(fd_flags >> 32);
	__u32 flags = (__u32)fd_flags;
	__u32 zero = 0;
	struct data_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev || total == 0)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pos_key pk = {.tgid = id >> 32, .flags = flags & (F_EGRESS | F_TLS), .conn = conn};
	__u64 *posp = bpf_map_lookup_elem(&stream_pos, &pk);
	__u64 pos = posp ? *posp : 0;

	fill_header(&ev->h, EV_DATA, flags, conn, fd, ts);
	ev->h.call_pos = pos;
	ev->h.call_len = total;
	__u64 sent = 0;
	for (int i = 0; i < MAX_CHUNKS; i++) {
		if (sent >= total)
			break;
		__u64 n = total - sent;
		if (n > CHUNK)
			n = CHUNK;
		/* Keeps the verifier's bounds on n through the arithmetic below. */
		n &= (2 * CHUNK - 1);
		if (n > CHUNK)
			break;
		ev->h.len = n;
		ev->h.pos = pos + sent;
		if (sent + n >= total || i == MAX_CHUNKS - 1)
			ev->h.flags = flags | F_LAST;
		if (bpf_probe_read_user(ev->data, n, (const void *)(buf + sent)) != 0) {
			count(ST_READ_ERRORS, n);
		} else if (bpf_ringbuf_output(&events, ev, sizeof(ev->h) + n, wake_flags()) != 0) {
			count(ST_RING_DROPS, 1);
			count(ST_RING_DROP_BYTES, n);
		} else {
			count(ST_RECORDS, 1);
		}
		sent += n;
	}
	if (sent < total)
		count(ST_CAP_BYTES, total - sent);
	__u64 next = pos + total;
	bpf_map_update_elem(&stream_pos, &pk, &next, BPF_ANY);
	return 0;
}

static __always_inline void emit_small(__u32 kind, __u32 flags, __u64 conn, __s32 fd, const void *payload,
				       __u32 len)
{
	__u32 zero = 0;
	struct data_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return;
	fill_header(&ev->h, kind, flags, conn, fd, bpf_ktime_get_ns());
	if (len > 64)
		len = 64;
	if (payload && len)
		__builtin_memcpy(ev->data, payload, 24); /* every small payload is a struct sock_addr */
	ev->h.len = payload ? len : 0;
	if (bpf_ringbuf_output(&events, ev, sizeof(ev->h) + (payload ? 24 : 0), wake_flags()) != 0)
		count(ST_RING_DROPS, 1);
	else
		count(ST_RECORDS, 1);
}

static __always_inline void forget_stream(__u32 tgid, __u32 tls, __u64 conn)
{
	struct pos_key pk = {.tgid = tgid, .flags = tls, .conn = conn};
	bpf_map_delete_elem(&stream_pos, &pk);
	pk.flags = tls | F_EGRESS;
	bpf_map_delete_elem(&stream_pos, &pk);
}

/* ---- TLS libraries (OpenSSL and BoringSSL ABI) ---------------------------------------------------- */

/* In-flight calls are keyed by thread and by kind (read or write): a write made from inside a read (Node
 * runs JavaScript from OpenSSL callbacks) is tracked on its own; a wrapper of the same kind (BoringSSL's
 * SSL_write_ex calls SSL_write) keeps the outer call. pid_tgid never uses bit 63. */
static __always_inline __u64 ssl_key(__u64 id, __u32 op)
{
	return (op == OP_READ || op == OP_READ_EX) ? id | (1ull << 63) : id;
}

static __always_inline int ssl_enter(struct pt_regs *ctx, __u32 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (skip_process(id >> 32))
		return 0;
	__u64 key = ssl_key(id, op);
	if (bpf_map_lookup_elem(&ssl_calls, &key))
		return 0;
	struct ssl_call call = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.out_len = (op == OP_WRITE_EX || op == OP_READ_EX) ? PT_REGS_PARM4(ctx) : 0,
		.ts = bpf_ktime_get_ns(),
		.fd = -1,
		.op = op,
	};
	bpf_map_update_elem(&ssl_calls, &key, &call, BPF_ANY);
	return 0;
}

static __always_inline int ssl_return(struct pt_regs *ctx, __u32 op)
{
	__u64 key = ssl_key(bpf_get_current_pid_tgid(), op);
	struct ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &key);
	if (!call || call->op != op)
		return 0;
	struct ssl_call c = *call;
	bpf_map_delete_elem(&ssl_calls, &key);

	/* Every probed function returns int: the upper half of the register is not part of the value. */
	int ret = (int)PT_REGS_RC(ctx);
	__u64 n = 0;
	if (op == OP_WRITE_EX || op == OP_READ_EX) {
		__u64 done = 0; /* size_t */
		if (ret != 1 || !c.out_len || bpf_probe_read_user(&done, sizeof(done), (const void *)c.out_len))
			return 0;
		n = done;
	} else {
		if (ret <= 0)
			return 0;
		n = ret;
	}
	int egress = op == OP_WRITE || op == OP_WRITE_EX;
	/* Writes are stamped when the call began (the request leaves), reads when the bytes arrived. */
	__u64 ts = egress ? c.ts : bpf_ktime_get_ns();
	emit_data(c.ssl, FD_FLAGS(c.fd, F_TLS | (egress ? F_EGRESS : 0)), ts, c.buf, n);
	return 0;
}

SEC("uprobe")
int ssl_write_enter(struct pt_regs *ctx) { return ssl_enter(ctx, OP_WRITE); }
SEC("uretprobe")
int ssl_write_exit(struct pt_regs *ctx) { return ssl_return(ctx, OP_WRITE); }
SEC("uprobe")
int ssl_read_enter(struct pt_regs *ctx) { return ssl_enter(ctx, OP_READ); }
SEC("uretprobe")
int ssl_read_exit(struct pt_regs *ctx) { return ssl_return(ctx, OP_READ); }
SEC("uprobe")
int ssl_write_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, OP_WRITE_EX); }
SEC("uretprobe")
int ssl_write_ex_exit(struct pt_regs *ctx) { return ssl_return(ctx, OP_WRITE_EX); }
SEC("uprobe")
int ssl_read_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, OP_READ_EX); }
SEC("uretprobe")
int ssl_read_ex_exit(struct pt_regs *ctx) { return ssl_return(ctx, OP_READ_EX); }

/* SSL_free / SSL_shutdown: the session's streams end. */
SEC("uprobe")
int ssl_close(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (skip_process(tgid))
		return 0;
	__u64 ssl = PT_REGS_PARM1(ctx);
	struct pos_key pk = {.tgid = tgid, .flags = F_TLS, .conn = ssl};
	struct pos_key pk2 = {.tgid = tgid, .flags = F_TLS | F_EGRESS, .conn = ssl};
	/* Only sessions that carried data are reported (most SSL_free calls are of idle objects). */
	if (!bpf_map_lookup_elem(&stream_pos, &pk) && !bpf_map_lookup_elem(&stream_pos, &pk2))
		return 0;
	forget_stream(tgid, F_TLS, ssl);
	emit_small(EV_CLOSE, F_TLS, ssl, -1, 0, 0);
	return 0;
}

/* ---- syscalls -------------------------------------------------------------------------------------- */

/* syscalls:sys_enter_* / sys_exit_* tracepoint contexts (see events/syscalls/<name>/format). */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

/* Entry of a data syscall: inside an SSL_* call it only teaches the call its fd (and marks the socket as
 * TLS); otherwise a plaintext INET socket's call is remembered for the exit. */
static __always_inline int data_enter(struct sys_enter_ctx *ctx, __u32 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (skip_process(tgid))
		return 0;
	__s32 fd = (__s32)ctx->args[0];
	struct sock_key sk = {.tgid = tgid, .fd = fd};
	struct ssl_call *ssl = bpf_map_lookup_elem(&ssl_calls, &id);
	__u64 read_key = id | (1ull << 63);
	struct ssl_call *ssl_read = bpf_map_lookup_elem(&ssl_calls, &read_key);
	if (ssl_read && ssl_read->fd < 0)
		ssl_read->fd = fd;
	if (ssl || ssl_read) {
		if (ssl && ssl->fd < 0)
			ssl->fd = fd;
		struct sock_val *s = bpf_map_lookup_elem(&sockets, &sk);
		if (s) {
			s->state = SOCK_TLS;
		} else {
			struct sock_val v = {.state = SOCK_TLS};
			bpf_map_update_elem(&sockets, &sk, &v, BPF_ANY);
		}
		return 0;
	}
	struct sock_val *s = bpf_map_lookup_elem(&sockets, &sk);
	if (!s || s->state == SOCK_TLS || s->state == SOCK_OTHER)
		return 0;
	struct sys_call call = {
		.buf = ctx->args[1],
		.ts = bpf_ktime_get_ns(),
		.fd = fd,
		.op = op,
		.count = ctx->args[2],
	};
	bpf_map_update_elem(&sys_calls, &id, &call, BPF_ANY);
	return 0;
}

/* What the first bytes of a connection say it carries. */
static __always_inline __u32 sniff(__u64 buf, __u64 len)
{
	__u8 b[4] = {};
	if (len < 4 || bpf_probe_read_user(b, sizeof(b), (const void *)buf))
		return len < 4 ? SOCK_UNKNOWN : SOCK_OTHER;
	/* A TLS record header: content type 20..23, then major version 3. */
	if (b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03)
		return SOCK_TLS;
	/* HTTP/1.x request or status line, or the HTTP/2 preface ("PRI "). */
	__u32 w = b[0] | (b[1] << 8) | (b[2] << 16) | ((__u32)b[3] << 24);
#define W(s) ((__u32)(s)[0] | ((__u32)(s)[1] << 8) | ((__u32)(s)[2] << 16) | ((__u32)(s)[3] << 24))
	if (w == W("GET ") || w == W("POST") || w == W("PUT ") || w == W("HEAD") || w == W("DELE") ||
	    w == W("PATC") || w == W("OPTI") || w == W("HTTP") || w == W("PRI "))
		return SOCK_PLAIN;
#undef W
	return SOCK_OTHER;
}

struct iovec_user {
	__u64 base;
	__u64 len;
};

#define MAX_IOV 8

static __always_inline void emit_iov(__s32 fd, __u32 flags, __u64 ts, __u64 iov, __u64 iovcnt, __u64 total)
{
	__u64 left = total;
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= iovcnt || left == 0)
			break;
		struct iovec_user v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(iov + i * sizeof(v))))
			break;
		__u64 n = v.len < left ? v.len : left;
		emit_data(fd, FD_FLAGS(fd, flags), ts, v.base, n);
		left -= n;
	}
	if (left) {
		/* More iovecs than followed: the position still moves past them. */
		__u64 id = bpf_get_current_pid_tgid();
		struct pos_key pk = {.tgid = id >> 32, .flags = flags & (F_EGRESS | F_TLS), .conn = fd};
		__u64 *posp = bpf_map_lookup_elem(&stream_pos, &pk);
		__u64 next = (posp ? *posp : 0) + left;
		bpf_map_update_elem(&stream_pos, &pk, &next, BPF_ANY);
		count(ST_CAP_BYTES, left);
	}
}

static __always_inline int data_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sys_call *callp = bpf_map_lookup_elem(&sys_calls, &id);
	if (!callp)
		return 0;
	struct sys_call call = *callp;
	bpf_map_delete_elem(&sys_calls, &id);
	if (call.op == OP_CONNECT || call.op == OP_ACCEPT || ctx->ret <= 0)
		return 0;
	__u64 n = ctx->ret;
	struct sock_key sk = {.tgid = id >> 32, .fd = call.fd};
	struct sock_val *s = bpf_map_lookup_elem(&sockets, &sk);
	if (!s)
		return 0;
	int egress = call.op == OP_WRITE || call.op == OP_WRITEV || call.op == OP_SENDMSG;
	__u64 ts = egress ? call.ts : bpf_ktime_get_ns();
	__u32 flags = egress ? F_EGRESS : 0;

	__u64 iov = 0, iovcnt = 0;
	if (call.op == OP_WRITEV || call.op == OP_READV) {
		iov = call.buf;
		iovcnt = call.count;
	} else if (call.op == OP_SENDMSG || call.op == OP_RECVMSG) {
		/* struct user_msghdr: msg_iov at 16, msg_iovlen at 24. */
		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(call.buf + 16)) ||
		    bpf_probe_read_user(&iovcnt, sizeof(iovcnt), (const void *)(call.buf + 24)))
			return 0;
	}
	if (s->state == SOCK_UNKNOWN) {
		__u64 first = call.buf, first_len = n;
		if (iov) {
			struct iovec_user v = {};
			if (bpf_probe_read_user(&v, sizeof(v), (const void *)iov))
				return 0;
			first = v.base;
			first_len = v.len < n ? v.len : n;
		}
		/* Fewer than 4 bytes: shipped, and the next call decides. */
		__u32 state = sniff(first, first_len);
		if (state != SOCK_UNKNOWN)
			s->state = state;
		if (state == SOCK_TLS || state == SOCK_OTHER)
			return 0;
	} else if (s->state != SOCK_PLAIN) {
		return 0;
	}
	if (iov)
		emit_iov(call.fd, flags, ts, iov, iovcnt, n);
	else
		emit_data(call.fd, FD_FLAGS(call.fd, flags), ts, call.buf, n);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int sys_enter_write(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_WRITE); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_enter_sendto(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_WRITE); }
SEC("tracepoint/syscalls/sys_enter_read")
int sys_enter_read(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_READ); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_enter_recvfrom(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_READ); }
SEC("tracepoint/syscalls/sys_enter_writev")
int sys_enter_writev(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_WRITEV); }
SEC("tracepoint/syscalls/sys_enter_readv")
int sys_enter_readv(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_READV); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_enter_sendmsg(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_SENDMSG); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_enter_recvmsg(struct sys_enter_ctx *ctx) { return data_enter(ctx, OP_RECVMSG); }

SEC("tracepoint/syscalls/sys_exit_write")
int sys_exit_write(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int sys_exit_sendto(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit_read(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sys_exit_recvfrom(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_writev")
int sys_exit_writev(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_readv")
int sys_exit_readv(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sys_exit_sendmsg(struct sys_exit_ctx *ctx) { return data_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sys_exit_recvmsg(struct sys_exit_ctx *ctx) { return data_exit(ctx); }

/* connect(fd, addr, len) and accept4(fd, addr, len*, flags): remember the sockaddr for the exit. */
static __always_inline int sock_enter(struct sys_enter_ctx *ctx, __u32 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (skip_process(id >> 32))
		return 0;
	if (op == OP_ACCEPT && !capture_server)
		return 0;
	struct sys_call call = {
		.buf = ctx->args[1],
		.ts = bpf_ktime_get_ns(),
		.fd = (__s32)ctx->args[0],
		.op = op,
	};
	bpf_map_update_elem(&sys_calls, &id, &call, BPF_ANY);
	return 0;
}

static __always_inline int sock_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sys_call *callp = bpf_map_lookup_elem(&sys_calls, &id);
	if (!callp)
		return 0;
	struct sys_call call = *callp;
	bpf_map_delete_elem(&sys_calls, &id);
	__s32 fd;
	if (call.op == OP_CONNECT) {
		if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
			return 0;
		fd = call.fd;
	} else if (call.op == OP_ACCEPT) {
		if (ctx->ret < 0)
			return 0;
		fd = (__s32)ctx->ret;
	} else {
		return 0;
	}
	struct sock_addr a = {};
	if (call.buf) {
		__u16 family = 0;
		if (bpf_probe_read_user(&family, sizeof(family), (const void *)call.buf))
			return 0;
		a.family = family;
		__u16 port_be = 0;
		bpf_probe_read_user(&port_be, sizeof(port_be), (const void *)(call.buf + 2));
		a.port = __builtin_bswap16(port_be);
		if (family == AF_INET)
			bpf_probe_read_user(a.addr, 4, (const void *)(call.buf + 4));
		else if (family == AF_INET6)
			bpf_probe_read_user(a.addr, 16, (const void *)(call.buf + 8));
		else
			return 0; /* unix sockets and the like */
	} else if (call.op == OP_CONNECT) {
		return 0;
	}
	struct sock_key sk = {.tgid = tgid, .fd = fd};
	struct sock_val v = {.state = SOCK_UNKNOWN, .accepted = call.op == OP_ACCEPT};
	bpf_map_update_elem(&sockets, &sk, &v, BPF_ANY);
	forget_stream(tgid, 0, fd);
	emit_small(EV_SOCK_OPEN, call.op == OP_ACCEPT ? F_ACCEPTED : 0, fd, fd, &a, sizeof(a));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct sys_enter_ctx *ctx) { return sock_enter(ctx, OP_CONNECT); }
SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct sys_exit_ctx *ctx) { return sock_exit(ctx); }
SEC("tracepoint/syscalls/sys_enter_accept4")
int sys_enter_accept4(struct sys_enter_ctx *ctx) { return sock_enter(ctx, OP_ACCEPT); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct sys_exit_ctx *ctx) { return sock_exit(ctx); }
SEC("tracepoint/syscalls/sys_enter_accept")
int sys_enter_accept(struct sys_enter_ctx *ctx) { return sock_enter(ctx, OP_ACCEPT); }
SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct sys_exit_ctx *ctx) { return sock_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sock_key sk = {.tgid = tgid, .fd = (__s32)ctx->args[0]};
	struct sock_val *s = bpf_map_lookup_elem(&sockets, &sk);
	if (!s)
		return 0;
	__u32 flags = s->state == SOCK_TLS ? F_TLS : 0;
	bpf_map_delete_elem(&sockets, &sk);
	forget_stream(tgid, 0, sk.fd);
	if (skip_process(tgid))
		return 0;
	/* For a TLS socket user space closes the SSL session it saw on this fd. */
	emit_small(EV_CLOSE, flags, sk.fd, sk.fd, 0, 0);
	return 0;
}

/* ---- processes ------------------------------------------------------------------------------------- */

struct sched_exec_ctx {
	__u64 common;
	__u32 filename_loc; /* __data_loc: offset in the low 16 bits, length in the high 16 */
	__s32 pid;
	__s32 old_pid;
};

SEC("tracepoint/sched/sched_process_exec")
int sched_process_exec(struct sched_exec_ctx *ctx)
{
	__u32 zero = 0;
	struct data_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return 0;
	fill_header(&ev->h, EV_EXEC, 0, 0, -1, bpf_ktime_get_ns());
	__u32 off = ctx->filename_loc & 0xFFFF;
	long n = bpf_probe_read_kernel_str(ev->data, PATH_MAX_BYTES, (const char *)ctx + off);
	if (n < 0)
		n = 0;
	n &= (PATH_MAX_BYTES - 1) | PATH_MAX_BYTES;
	if (n > PATH_MAX_BYTES)
		n = PATH_MAX_BYTES;
	ev->h.len = n;
	if (bpf_ringbuf_output(&events, ev, sizeof(ev->h) + n, wake_flags()) != 0)
		count(ST_RING_DROPS, 1);
	else
		count(ST_RECORDS, 1);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id != (__u32)(id >> 32))
		return 0; /* a thread, not the process */
	bpf_map_delete_elem(&excluded, &(__u32){id >> 32});
	emit_small(EV_EXIT, 0, 0, -1, 0, 0);
	return 0;
}
