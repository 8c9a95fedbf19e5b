"""Helpers for end-to-end tests: start the real `lumen` binary, a real S3 server (moto) and a TCP proxy
that can cut the S3 endpoint off, generate spans, and talk to the HTTP API."""

import calendar
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
LUMEN_BIN = Path(os.environ.get("LUMEN_BIN", Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "lumen"))

MODELS = [
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
    ("gcp.gemini", "gemini-2.5-flash"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last error: {last_error!r}")


def make_spans(n, seed=0, start="2026-11-28T08:00:00", prefix="s", content=False):
    """Deterministic spans spread over a few hours, several models, some errors and streams."""
    rng = random.Random(seed)
    base = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M:%S"))
    spans = []
    for i in range(n):
        provider, model = MODELS[i % len(MODELS)]
        start_ns = (base + rng.randrange(0, 3 * 3600)) * 1_000_000_000 + rng.randrange(0, 10**9)
        duration = round(rng.lognormvariate(6.5, 0.6), 3)
        streaming = i % 3 == 0
        span = {
            "span_id": f"{prefix}{seed:04x}{i:011x}"[:64],
            "trace_id": f"{seed:08x}{i // 3:024x}",
            "start_time": start_ns,
            "duration_ms": duration,
            "service_name": f"svc-{i % 7}",
            "provider": provider,
            "operation": "chat",
            "request_model": model,
            "response_model": model,
            "streaming": streaming,
            "input_tokens": rng.randrange(10, 4000),
            "output_tokens": rng.randrange(1, 1000),
            "http_status": 200,
            "pid": 1000 + i % 13,
            "process_name": "python3",
            "finish_reasons": ["stop"],
            "source": "api",
        }
        if streaming:
            span["ttft_ms"] = round(duration * 0.2, 3)
        if i % 50 == 7:
            span["http_status"] = 429
            span["error_type"] = "rate_limit_error"
            span["output_tokens"] = None
        if content:
            span["input_messages"] = [{"role": "user", "parts": [{"type": "text", "content": f"question {i} " + "x" * 200}]}]
        spans.append(span)
    return spans


def ndjson(spans) -> bytes:
    return ("\n".join(json.dumps(s) for s in spans) + "\n").encode()


class LumenServer:
    """One `lumen serve` process on a free loopback port."""

    def __init__(self, data_dir, args=(), env=None, port=None, log_dir=None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("LUMEN_LOG", "info")
        self.log_dir = Path(log_dir or self.data_dir.parent)
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait=True):
        assert LUMEN_BIN.exists(), f"{LUMEN_BIN} is missing: run cargo build --workspace first"
        self.starts += 1
        self.log_path = self.log_dir / f"lumen-{self.port}-{self.starts}.log"
        log = open(self.log_path, "wb")
        cmd = [str(LUMEN_BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"lumen exited with {self.proc.returncode}:\n{self.log()}")
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200

        wait_for(ready, timeout=timeout, what=f"lumen on {self.url}")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    # --- API -----------------------------------------------------------------------------------
    def ingest(self, spans, headers=None, body=None, timeout=30):
        h = {"Content-Type": "application/x-ndjson"}
        h.update(headers or {})
        return requests.post(self.url + "/v1/spans", data=body if body is not None else ndjson(spans), headers=h, timeout=timeout)

    def sql(self, query, fmt=None, headers=None):
        payload = {"sql": query}
        if fmt:
            payload["format"] = fmt
        return requests.post(self.url + "/v1/sql", json=payload, headers=headers or {}, timeout=120)

    def rows(self, query):
        r = self.sql(query)
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    def scalar(self, query):
        return self.rows(query)[0][0]

    def metric(self, name):
        text = requests.get(self.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_flushed(self, timeout=60):
        """Until nothing is left in memory (everything is in Parquet and the manifest)."""
        wait_for(lambda: self.metric("lumen_hot_rows") == 0, timeout=timeout, what="flush")


class MotoServer:
    """A real S3-compatible HTTP server (moto) on loopback."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.log_path = Path(log_dir) / f"moto-{self.port}.log"
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        venv_bin = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
        exe = venv_bin / "moto_server"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: requests.get(self.endpoint, timeout=1).status_code < 500, what="moto")
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class TcpProxy:
    """A loopback TCP proxy in front of a server. `cut()` closes the listener and every open connection
    (the endpoint is gone: connections are refused); `restore()` listens again on the same port."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self._listener = None
        self._conns = []
        self._lock = threading.Lock()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def restore(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return self

    def cut(self):
        s, self._listener = self._listener, None
        if s:
            s.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
