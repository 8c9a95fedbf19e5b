"""Helpers for the web UI tests (tests/e2e/test_ui.py) and for developing the UI by hand:
seed a lumen server with `lumen-bench gen` data shifted to end now, a static file + /v1 proxy for when the
binary has no `--ui-dir`, a local webhook receiver, and the headless Chromium launch settings.

Run by hand for development:
    python tests/e2e/ui_harness.py seed http://127.0.0.1:4400 --spans 20000
    python tests/e2e/ui_harness.py proxy 4401 http://127.0.0.1:4400     # serves ui/ from disk, /v1 forwarded
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
UI_DIR = ROOT / "ui"
BENCH_BIN = Path(os.environ.get("LUMEN_BENCH_BIN", Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "lumen-bench"))
CHROMIUM = os.environ.get("LUMEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def generate_spans(out: Path, n: int, seed: int = 1, end_ns: int | None = None):
    """`lumen-bench gen` writes spans on fixed times; shift them so the newest starts a minute before `end_ns`
    (default: now), keeping every gap, so relative windows like -24h show them. Returns the shifted lines."""
    raw = out.with_suffix(".raw.ndjson")
    subprocess.run([str(BENCH_BIN), "gen", "--spans", str(n), "--seed", str(seed), "--content", "--out", str(raw)], check=True)
    spans = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    newest = max(s["start_time"] for s in spans)
    end_ns = end_ns or time.time_ns()
    shift = (end_ns - 60 * 10**9) - newest
    lines = []
    for s in spans:
        s["start_time"] = s["start_time"] + shift
        if isinstance(s.get("end_time"), int):
            s["end_time"] = s["end_time"] + shift
        lines.append(json.dumps(s))
    out.write_text("\n".join(lines) + "\n")
    raw.unlink()
    return lines


def ingest_lines(base_url: str, lines, chunk=4000, headers=None):
    h = {"Content-Type": "application/x-ndjson", **(headers or {})}
    for i in range(0, len(lines), chunk):
        body = ("\n".join(lines[i:i + chunk]) + "\n").encode()
        r = requests.post(base_url + "/v1/spans", data=body, headers=h, timeout=120)
        assert r.status_code == 200, r.text


class _Proxy(BaseHTTPRequestHandler):
    """Serves `/` and `/ui/*` from the ui folder and forwards everything else to the upstream lumen."""
    upstream = ""
    ui_dir = UI_DIR
    TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".svg": "image/svg+xml", ".png": "image/png", ".md": "text/markdown; charset=utf-8", ".json": "application/json"}

    def log_message(self, *a):
        pass

    def _static(self):
        path = self.path.split("?", 1)[0]
        rel = "index.html" if path in ("/", "/index.html") else path[len("/ui/"):]
        f = (self.ui_dir / rel).resolve()
        if not str(f).startswith(str(self.ui_dir.resolve())) or not f.is_file():
            self.send_response(404)
            self.end_headers()
            return
        body = f.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", self.TYPES.get(f.suffix, "application/octet-stream"))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        for k in ("Content-Type", "Authorization", "Accept"):
            if self.headers.get(k):
                req.add_header(k, self.headers[k])
        try:
            resp = urllib.request.urlopen(req, timeout=120)
            status, headers, data = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, e.headers, e.read()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        if self.path == "/" or self.path.startswith("/ui/") or self.path.startswith("/index.html"):
            return self._static()
        return self._forward()

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def start_proxy(port: int, upstream: str, ui_dir: Path = UI_DIR):
    handler = type("Proxy", (_Proxy,), {"upstream": upstream.rstrip("/"), "ui_dir": Path(ui_dir)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class WebhookReceiver:
    """A local HTTP server that records every JSON POST (alert notifications)."""

    def __init__(self):
        self.received = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(data)
                except ValueError:
                    payload = data.decode(errors="replace")
                outer.received.append({"path": self.path, "payload": payload})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.server.shutdown()


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "seed":
        base = sys.argv[2]
        n = int(sys.argv[sys.argv.index("--spans") + 1]) if "--spans" in sys.argv else 20000
        out = Path("/tmp/ui/seed.ndjson")
        out.parent.mkdir(parents=True, exist_ok=True)
        ingest_lines(base, generate_spans(out, n))
        print("seeded", n)
    elif cmd == "proxy":
        start_proxy(int(sys.argv[2]), sys.argv[3])
        print("proxy on", sys.argv[2])
        threading.Event().wait()
    else:
        print(__doc__)
