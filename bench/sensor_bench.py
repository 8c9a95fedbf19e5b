"""The eBPF sensor's cost and completeness, measured on this machine (run by `lumen-bench run`; needs root).

1. Latency per TLS call, sensor off vs on: one client process (Python's ssl module, i.e. the system's
   libssl, which the sensor probes) sends an OpenAI-shaped request to a local TLS server and reads the
   answer, N times on one keep-alive connection. The time of each `SSL_write` (sendall) and of each
   `SSL_read` (recv, timed only once the answer is waiting, so no network wait is in it) is recorded.
2. Completeness at the highest call rate this machine sustains: several client processes call as fast as
   they can while the sensor runs; every call must become a span in `lumen serve`.

Prints the markdown tables on stdout (progress on stderr).

    python sensor_bench.py --sensor target/release/lumen-sensor --lumen target/release/lumen --work DIR [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import select
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ANSWER_BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}}).encode()
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER_BODY)
          + ANSWER_BODY)
REQUEST_BODY = json.dumps({"model": "gpt-4o-mini",
                           "messages": [{"role": "user", "content": "benchmark prompt " * 20}]}).encode()
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
           b"content-length: %d\r\n\r\n" % len(REQUEST_BODY) + REQUEST_BODY)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the TLS server ---------------------------------------------------------------------------------


def serve(port: int, cert: str, key: str):
    """An asyncio TLS HTTP/1.1 server answering every request with ANSWER (keep-alive)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context, backlog=256)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def connect(port: int, cafile: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_answer(sock: ssl.SSLSocket, timed: list[int] | None) -> None:
    got = 0
    while got < len(ANSWER):
        if timed is not None:
            select.select([sock], [], [])  # the bytes are waiting: recv times only SSL_read itself
            t0 = time.perf_counter_ns()
            chunk = sock.recv(65536)
            timed.append(time.perf_counter_ns() - t0)
        else:
            chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed")
        got += len(chunk)


def latency_run(port: int, cafile: str, calls: int) -> dict:
    sock = connect(port, cafile)
    for _ in range(50):  # warm-up
        sock.sendall(REQUEST)
        read_answer(sock, None)
    writes, reads, trips = [], [], []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        sock.sendall(REQUEST)
        t1 = time.perf_counter_ns()
        read_answer(sock, reads)
        t2 = time.perf_counter_ns()
        writes.append(t1 - t0)
        trips.append(t2 - t0)
    sock.close()
    return {"write": writes, "read": reads, "trip": trips}


def rate_client(port: int, cafile: str, seconds: float, out):
    sock = connect(port, cafile)
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(REQUEST)
        read_answer(sock, None)
        done += 1
    sock.close()
    out.put(done)


def rate_run(port: int, cafile: str, clients: int, seconds: float) -> tuple[int, float]:
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=rate_client, args=(port, cafile, seconds, queue)) for _ in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total, time.monotonic() - t0


# --- lumen and the sensor ------------------------------------------------------------------------------


def sql(url: str, query: str):
    req = urllib.request.Request(url + "/v1/sql", data=json.dumps({"sql": query}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["rows"]


def count(url: str, port: int) -> int:
    return sql(url, f"SELECT count(*) FROM spans WHERE server_port = {port}")[0][0]


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


class Sensor:
    def __init__(self, binary: str, endpoint: str, work: Path):
        self.metrics_port = free_port()
        self.log = open(work / f"sensor-{self.metrics_port}.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "run", "--endpoint", endpoint, "--spool-dir", str(work / "spool"),
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--batch-age-ms", "200"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=dict(os.environ, NO_COLOR="1", RUST_LOG="info"))
        wait(lambda: "capturing" in (work / f"sensor-{self.metrics_port}.log").read_text(errors="replace"), 120,
             "the sensor to attach")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sensor", required=True)
    ap.add_argument("--lumen", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("### Sensor\n\nSkipped: the eBPF sensor needs root.\n")
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    calls = 300 if args.quick else 5000
    seconds = 3.0 if args.quick else 20.0
    clients = 2

    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, str(cert), str(key)), daemon=True)
    server.start()
    wait(lambda: socket.create_connection(("127.0.0.1", port)).close() or True, 30, "the TLS server")

    lumen_port = free_port()
    data = tempfile.mkdtemp(dir=work)
    lumen = subprocess.Popen([args.lumen, "serve", "--listen", f"127.0.0.1:{lumen_port}", "--data-dir", data],
                             stdout=subprocess.DEVNULL, stderr=open(work / "lumen.log", "wb"))
    url = f"http://127.0.0.1:{lumen_port}"
    wait(lambda: urllib.request.urlopen(url + "/healthz", timeout=1).status == 200, 60, "lumen serve")
    try:
        # Off and on alternate twice, so drift of the machine shows up as a spread rather than a bias.
        runs = {"off": [], "on": []}
        rates = {"off": [], "on": []}
        for round_ in range(1 if args.quick else 2):
            for mode in ("off", "on"):
                sensor = Sensor(args.sensor, url, work) if mode == "on" else None
                try:
                    log(f"round {round_ + 1}, sensor {mode}: {calls} sequential calls")
                    runs[mode].append(latency_run(port, str(cert), calls))
                    if sensor:
                        # The latency run's spans first, so the rate run's are counted on their own.
                        expected = count(url, port) + calls + 50
                        try:
                            wait(lambda: count(url, port) >= expected, 60, "the spans of the latency run")
                        except SystemExit:
                            pass
                    before = count(url, port)
                    log(f"round {round_ + 1}, sensor {mode}: {clients} clients for {seconds:.0f} s")
                    made, elapsed = rate_run(port, str(cert), clients, seconds)
                    if sensor:
                        try:
                            wait(lambda: count(url, port) - before >= made, 120, "the spans of the rate run")
                        except SystemExit:
                            pass  # reported as incomplete below
                        rates[mode].append((made, elapsed, count(url, port) - before, metrics(sensor.metrics_port)))
                    else:
                        rates[mode].append((made, elapsed, None, {}))
                finally:
                    if sensor:
                        sensor.stop()
    finally:
        lumen.terminate()
        lumen.wait(timeout=60)
        server.terminate()

    def merged(mode, kind):
        return [v for run in runs[mode] for v in run[kind]]

    out = ["### Sensor: added latency per TLS call (sensor off vs on)\n",
           f"One Python client (the system's libssl, probed by the sensor) → a local TLS server, {calls} calls per "
           f"run on one keep-alive connection, {len(runs['on'])} run(s) each way, alternating. `SSL_read` is timed "
           "once the answer is waiting. Times in µs.\n",
           "| call | off p50 | on p50 | added p50 | off p99 | on p99 | added p99 | on / off (p50) |",
           "|---|---|---|---|---|---|---|---|"]
    for label, kind in (("SSL_write (sendall)", "write"), ("SSL_read (recv)", "read"),
                        ("request → answer round trip", "trip")):
        off, on = merged("off", kind), merged("on", kind)
        o50, n50, o99, n99 = pct(off, .5), pct(on, .5), pct(off, .99), pct(on, .99)
        out.append(f"| {label} | {o50:.1f} | {n50:.1f} | {n50 - o50:+.1f} | {o99:.1f} | {n99:.1f} | {n99 - o99:+.1f} | "
                   f"{n50 / o50:.2f} |")
    out.append("")
    out.append("### Sensor: capture completeness at the highest call rate\n")
    out.append(f"{clients} client processes call as fast as they can for {seconds:.0f} s per run (TLS, keep-alive); "
               "with the sensor on, every call must be a span in `lumen serve`.\n")
    out.append("| sensor | calls | calls/s | spans stored | completeness | ring drops | gaps | spans dropped |")
    out.append("|---|---|---|---|---|---|---|---|")
    for made, elapsed, stored, m in rates["off"] + rates["on"]:
        if stored is None:
            out.append(f"| off | {made} | {made / elapsed:.0f} | – | – | – | – | – |")
            continue
        out.append(f"| on | {made} | {made / elapsed:.0f} | {stored} | {100.0 * stored / max(made, 1):.2f} % | "
                   f"{m.get('lumen_sensor_ring_drops_total', 0):.0f} | {m.get('lumen_sensor_gaps_total', 0):.0f} | "
                   f"{m.get('lumen_sensor_dropped_spans_total', 0):.0f} |")
    off_rate = statistics.median(r[0] / r[1] for r in rates["off"])
    on_rate = statistics.median(r[0] / r[1] for r in rates["on"])
    out.append(f"\nThroughput with the sensor on / off: **{on_rate / off_rate:.2f}**\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
