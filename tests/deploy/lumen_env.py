"""Real processes for the deploy tests: `lumen serve` (local directory or S3 storage), moto as the S3 server,
and spans from `lumen-bench gen --content` spread over a week."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET
LUMEN_BIN = Path(os.environ.get("LUMEN_BIN") or TARGET / "debug" / "lumen")
LUMEN_BENCH_BIN = Path(os.environ.get("LUMEN_BENCH_BIN") or TARGET / "debug" / "lumen-bench")

DAY_NS = 86_400 * 10**9
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=60.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last error: {last!r}")


def generate_week(work: Path, days=7, per_day=600) -> list:
    """`lumen-bench gen --content` spans, one seed per day, each seed's day shifted back by its index (newest
    first, per_day spans each): a week of realistic traffic (models, latencies, tokens, costs, errors,
    prompts). Plus two spans that an analysis must not count as calls: the server-side twin of a call, and
    a plain HTTP exchange."""
    assert LUMEN_BENCH_BIN.exists(), f"{LUMEN_BENCH_BIN} is missing: build the workspace first"
    spans = []
    for day in range(days):
        out = work / f"gen-{day}.ndjson"
        subprocess.run(
            [str(LUMEN_BENCH_BIN), "gen", "--spans", str(per_day), "--seed", str(100 + day), "--content", "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for line in out.read_text().splitlines():
            span = json.loads(line)
            span["start_time"] = int(span["start_time"]) - day * DAY_NS
            spans.append(span)
        out.unlink()
    twin = dict(spans[0], span_id="server-twin-0", span_kind="server", process_name="vllm")
    plain = {
        "span_id": "plain-http-0",
        "start_time": spans[1]["start_time"],
        "duration_ms": 3.5,
        "http_method": "GET",
        "url_path": "/healthz",
        "http_status": 200,
        "source": "ebpf",
        "service_name": "svc-api-0",
    }
    return spans + [twin, plain]


class Lumen:
    """One `lumen serve` on a free loopback port."""

    def __init__(self, data_dir: Path, args=(), env=None):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.args = list(args)
        self.env = dict(os.environ, LUMEN_LOG="warn", **(env or {}))
        self.proc = None
        self.log_path = self.data_dir.parent / f"lumen-{self.port}.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        assert LUMEN_BIN.exists(), f"{LUMEN_BIN} is missing: build the workspace first"
        cmd = [str(LUMEN_BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=self.env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"lumen exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200

        wait_for(ready, what=f"lumen on {self.url}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ingest(self, spans, chunk=1000):
        for i in range(0, len(spans), chunk):
            body = "".join(json.dumps(s) + "\n" for s in spans[i : i + chunk]).encode()
            r = requests.post(self.url + "/v1/spans", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=60)
            assert r.status_code == 200, r.text

    def sql(self, query):
        r = requests.post(self.url + "/v1/sql", json={"sql": query}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    def metric(self, name):
        for line in requests.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_flushed(self, expected_rows):
        wait_for(
            lambda: self.metric("lumen_hot_rows") == 0 and self.metric("lumen_storage_rows") == expected_rows,
            what="every span flushed to Parquet",
        )


class Moto:
    """moto's S3 server on loopback (a real HTTP server speaking the S3 API)."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.log_path = Path(log_dir) / f"moto-{self.port}.log"
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        import sys

        exe = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT
        )
        wait_for(lambda: requests.get(self.endpoint, timeout=1).status_code < 500, what="moto")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def plant_orphan(storage_root: Path, manifest_files) -> str:
    """Copy a committed Parquet file to a new name in its partition, as a crash between writing a file and
    committing it to the manifest leaves it. Returns its relative path."""
    src = sorted(manifest_files)[0]
    rel = f"{src.rsplit('/', 1)[0]}/{uuid.uuid4()}.parquet"
    shutil.copyfile(storage_root / src, storage_root / rel)
    return rel
