"""Helpers for the live-capture tests: a self-signed certificate, the real `lumen-sensor run` process, its
Prometheus metrics, and reading spans back from `lumen serve` as dicts."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests

from lumen_harness import free_port, wait_for
from replay_harness import SENSOR_BIN


def sensor_unavailable_reason() -> str | None:
    """Why the sensor cannot run here (None when it can). CI runs as root on kernels with BTF and uprobes,
    so there a missing prerequisite is a failure of the test, not a skip."""
    if os.geteuid() != 0:
        return "the eBPF sensor needs root (CI runs as root)"
    return None


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def trust_env(cert: Path) -> dict:
    """The standard variables that make Python (ssl, httpx, requests), botocore, curl and Node trust `cert`."""
    return {"SSL_CERT_FILE": str(cert), "REQUESTS_CA_BUNDLE": str(cert), "AWS_CA_BUNDLE": str(cert),
            "CURL_CA_BUNDLE": str(cert), "NODE_EXTRA_CA_CERTS": str(cert)}


class Sensor:
    """One `lumen-sensor run` process."""

    def __init__(self, work: Path, endpoint: str, args=()):
        self.work = Path(work)
        self.endpoint = endpoint
        self.metrics_port = free_port()
        self.args = list(args)
        self.proc = None
        self.log_path = self.work / f"sensor-{self.metrics_port}.log"

    def start(self, timeout=120):
        assert SENSOR_BIN.exists(), f"{SENSOR_BIN} is missing: run cargo build --workspace first"
        cmd = [str(SENSOR_BIN), "run", "--endpoint", self.endpoint, "--spool-dir", str(self.work / "spool"),
               "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--batch-age-ms", "200", *self.args]
        env = dict(os.environ, RUST_LOG="info,lumen_sensor=debug", NO_COLOR="1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"), env=env)

        def capturing():
            if self.proc.poll() is not None:
                raise AssertionError(f"lumen-sensor exited with {self.proc.returncode}:\n{self.log()}")
            return "capturing" in self.log()

        wait_for(capturing, timeout=timeout, interval=0.2, what="lumen-sensor to attach its probes")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def metrics(self) -> dict[str, float]:
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def stop(self, timeout=60) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


SPAN_COLUMNS = ["start_time", "duration_ms", "ttft_ms", "source", "pid", "process_name", "exe", "host",
                "server_address", "server_port", "tls_library", "http_version", "http_method", "url_path",
                "http_status", "provider", "operation", "request_model", "response_model", "response_id",
                "streaming", "finish_reasons", "input_tokens", "output_tokens", "cache_read_tokens",
                "cache_creation_tokens", "reasoning_tokens", "error_type", "input_messages", "output_messages",
                "capture_flags"]


def stored_spans(server, where: str = "true") -> list[dict]:
    """Spans as lumen serve returns them over SQL (start_time as Unix ns)."""
    cols = ", ".join(c if c != "start_time" else "CAST(start_time AS BIGINT) AS start_time" for c in SPAN_COLUMNS)
    r = server.sql(f"SELECT {cols} FROM spans WHERE {where} ORDER BY start_time")
    assert r.status_code == 200, r.text
    return [dict(zip(SPAN_COLUMNS, row)) for row in r.json()["rows"]]
