"""The fake LLM provider of fake_provider.py, served over cleartext HTTP/2 with prior knowledge (h2c).

Clients open a TCP connection and send the `PRI * HTTP/2.0` preface straight away (`curl
--http2-prior-knowledge`); there is no HTTP/1.1 Upgrade. Every request stream is answered by the same
routes as the HTTP/1.1 fake, with the same deterministic tokens, models and knobs (see fake_provider.py):
POST /v1/chat/completions answers a unary chat completion, or with `"stream": true` an SSE stream of
chat.completion.chunk events (role-only first delta, one content delta per word, the finish chunk, the usage
chunk with `choices: []` when stream_options.include_usage, then `data: [DONE]`); /v1/messages, /v1/responses,
Gemini, Bedrock and Ollama paths work as well.

HTTP/2 framing: each response is one HEADERS frame (`:status`, content-type, content-length for unary
bodies), then its body in DATA frames: a unary body in one frame (split only by the peer's max frame size or
flow-control window), and every stream event in its own DATA frame after the usual pause (two frames with
the `x-fake-split` knob); END_STREAM closes the response. Each request stream is served by its own thread,
so concurrent streams on one connection are answered concurrently and their DATA frames interleave.

Run it in the foreground for debugging:  python tests/e2e/fake_h2_provider.py --port 8090 [--verbose]
"""

from __future__ import annotations

import argparse
import email.message
import gzip
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from fake_provider import DEFAULT_DELAY, _Handler


class _StreamGone(Exception):
    """The client reset the stream or closed the connection while its response was being sent."""


class _H2Connection:
    """One server-side h2c connection: reads frames on the connection's thread, hands every complete
    request to its own exchange thread, and serialises all writes (the h2 state machine is not
    thread-safe) under one lock that flow-control waits also use."""

    def __init__(self, server, sock, number):
        self.server = server
        self.sock = sock
        self.number = number  # 1-based, in accept order
        self.cond = threading.Condition()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.closed = False
        self.reset = set()
        self.threads = []

    def _flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def run(self):
        with self.cond:
            self.h2.initiate_connection()
            self._flush()
        pending = {}  # stream id -> (headers, body so far)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                with self.cond:
                    try:
                        events = self.h2.receive_data(data)
                    except h2.exceptions.ProtocolError as e:
                        self._log(f"protocol error: {e!r}")
                        self._flush()
                        break
                    for ev in events:
                        if isinstance(ev, h2.events.RequestReceived):
                            pending[ev.stream_id] = (ev.headers, bytearray())
                        elif isinstance(ev, h2.events.DataReceived):
                            if ev.stream_id in pending:
                                pending[ev.stream_id][1].extend(ev.data)
                            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in pending:
                            headers, body = pending.pop(ev.stream_id)
                            t = threading.Thread(target=self._exchange, args=(ev.stream_id, headers, bytes(body)),
                                                 daemon=True)
                            self.threads.append(t)
                            with self.server.fake.lock:
                                self.server.fake.in_flight += 1
                            t.start()
                        elif isinstance(ev, h2.events.StreamReset):
                            pending.pop(ev.stream_id, None)
                            self.reset.add(ev.stream_id)
                        elif isinstance(ev, h2.events.ConnectionTerminated):
                            self.closed = True
                    self.cond.notify_all()  # window updates, settings, resets
                    self._flush()
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
            for t in self.threads:
                t.join(timeout=10)

    def _log(self, text):
        if self.server.fake.verbose:
            sys.stderr.write(f"fake-h2 conn {self.number}: {text}\n")

    def _check(self, stream_id):
        if self.closed or stream_id in self.reset:
            raise _StreamGone(stream_id)

    # --- what an exchange thread calls --------------------------------------------------------------

    def send_headers(self, stream_id, headers, end_stream=False):
        with self.cond:
            self._check(stream_id)
            self.h2.send_headers(stream_id, headers, end_stream=end_stream)
            self._flush()

    def send_data(self, stream_id, data: bytes, end_stream=False):
        """`data` in as few DATA frames as the peer's max frame size and flow-control window allow (one,
        for anything this fake sends); waits for WINDOW_UPDATEs when the window is exhausted."""
        with self.cond:
            if not data and end_stream:
                self._check(stream_id)
                self.h2.end_stream(stream_id)
                self._flush()
                return
            while data:
                self._check(stream_id)
                window = self.h2.local_flow_control_window(stream_id)
                if window <= 0:
                    self.cond.wait(timeout=1)
                    continue
                n = min(len(data), window, self.h2.max_outbound_frame_size)
                self.h2.send_data(stream_id, data[:n], end_stream=end_stream and n == len(data))
                data = data[n:]
                self._flush()

    def _exchange(self, stream_id, headers, body):
        fake = self.server.fake
        try:
            _H2Exchange(self, stream_id, headers, body).serve()
        except (_StreamGone, OSError, h2.exceptions.StreamClosedError):
            pass
        except Exception as e:  # noqa: BLE001 - a fake bug: reset the stream if still possible
            sys.stderr.write(f"fake-h2: stream {stream_id} failed: {e!r}\n")
            try:
                with self.cond:
                    self.h2.reset_stream(stream_id, 2)  # INTERNAL_ERROR
                    self._flush()
            except Exception:  # noqa: BLE001
                pass
        finally:
            with fake.lock:
                fake.in_flight -= 1


class _H2Exchange(_Handler):
    """One request stream, answered by the HTTP/1.1 fake's handler methods: only the transport methods
    (reading the body, sending the head, the body and stream events) are HTTP/2 here."""

    protocol_version = "HTTP/2"

    def __init__(self, conn: _H2Connection, stream_id: int, headers, body: bytes):
        # Deliberately not BaseHTTPRequestHandler.__init__, which would read a request off a socket.
        self.h2conn = conn
        self.stream_id = stream_id
        self.server = conn.server
        self.request_body = body
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        self.command = pseudo.get(":method", "GET")
        self.path = pseudo.get(":path", "/")
        self.request_version = "HTTP/2"
        self.headers = email.message.Message()
        for k, v in headers:
            if not k.startswith(":"):
                self.headers[k] = v
        if pseudo.get(":authority") and "host" not in self.headers:
            self.headers["host"] = pseudo[":authority"]
        self.server.fake.streams.append((conn.number, stream_id, self.command, self.path))
        self._z = None

    def serve(self):
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self._prepare()
            return self.send_body(405, b"method not allowed\n", "text/plain; charset=utf-8")
        method()

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake-h2: %s\n" % (fmt % args))

    def _read_body(self) -> bytes:
        return self.request_body

    def _head(self, status, content_type, headers, extra=()):
        out = [(":status", str(status)), ("server", self.server_version), ("content-type", content_type),
               *extra]
        out += [(str(k).lower(), str(v)) for k, v in headers]
        return out

    def send_body(self, status: int, body: bytes, content_type: str, headers=()):
        if self.gzip:
            body = gzip.compress(body)
        extra = [("content-length", str(len(body)))] + ([("content-encoding", "gzip")] if self.gzip else [])
        head = self._head(status, content_type, headers, extra)
        if self.command == "HEAD" or not body:
            return self.h2conn.send_headers(self.stream_id, head, end_stream=True)
        self.h2conn.send_headers(self.stream_id, head)
        self.h2conn.send_data(self.stream_id, body, end_stream=True)

    def start_stream(self, content_type: str, headers=(), status=200):
        extra = [("cache-control", "no-cache")] + ([("content-encoding", "gzip")] if self.gzip else [])
        self.h2conn.send_headers(self.stream_id, self._head(status, content_type, headers, extra))
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31) if self.gzip else None
        self._events = 0

    def _chunk(self, data: bytes):
        """One DATA frame (the HTTP/1.1 fake's chunk)."""
        if data:
            self.h2conn.send_data(self.stream_id, data)

    def end_stream(self):
        tail = self._z.flush() if self._z else b""
        self.h2conn.send_data(self.stream_id, tail, end_stream=True)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, fake):
        self.fake = fake
        self.connections = set()
        self.conn_lock = threading.Lock()
        self.accepted = 0
        super().__init__(addr, _ConnectionHandler)


class _ConnectionHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.accepted += 1
            number = self.server.accepted
            self.server.connections.add(sock)
        try:
            _H2Connection(self.server, sock, number).run()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(sock)


class FakeH2Provider:
    """The fake provider over h2c on a loopback port. `with FakeH2Provider() as fp: fp.url ...`"""

    def __init__(self, host="127.0.0.1", port=0, delay=DEFAULT_DELAY, verbose=False):
        self.host = host
        self._port = port
        self.delay = delay
        self.verbose = verbose
        self.requests = []  # (method, raw path, {header: value}) of every request, in arrival order
        self.streams = []  # (connection number, stream id, method, path) of every request stream
        self.in_flight = 0  # request streams being answered
        self.lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        return self._server.accepted if self._server else 0

    def idle(self) -> bool:
        """True when every request stream received so far has been answered to its END_STREAM (or given
        up). A client that closes its connection as soon as it has read the last event it wants (the openai
        SDK stops at `data: [DONE]`) can otherwise beat the END_STREAM that follows it."""
        with self.lock:
            return self.in_flight == 0

    def start(self):
        self._server = _Server((self.host, self._port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if not self._server:
            return
        self._server.shutdown()
        with self._server.conn_lock:
            conns = list(self._server.connections)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY * 1000, help="pause between stream events")
    ap.add_argument("--verbose", "-v", action="store_true", help="log every request with its headers to stderr")
    args = ap.parse_args(argv)

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    fake = FakeH2Provider(args.host, args.port, delay=args.delay_ms / 1000, verbose=args.verbose).start()
    print(f"fake LLM provider (h2c, prior knowledge) on {fake.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
