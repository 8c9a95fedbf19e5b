"""Crash safety: SIGKILL at random moments while clients ingest; every acknowledged span survives exactly once."""

import os
import random
import threading
import time

import requests

from lumen_harness import make_spans, ndjson


class Client(threading.Thread):
    """Ingests batches of unique spans; a batch whose answer it did not get is sent again until it gets a 200
    (what a real exporter does). Records every span of every acknowledged batch."""

    def __init__(self, server, client_id, batch=40):
        super().__init__(daemon=True)
        self.server = server
        self.client_id = client_id
        self.batch = batch
        self.stop = threading.Event()
        self.acked_ids = set()
        self.accepted = 0
        self.duplicates = 0
        self.failures = 0
        # Batches whose first answers were lost but which had been stored: their retry said "duplicates".
        self.lost_answers = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            spans = make_spans(self.batch, seed=self.client_id * 100000 + n, prefix=f"c{self.client_id}b{n}x")
            body = ndjson(spans)
            while True:
                try:
                    r = requests.post(self.server.url + "/v1/spans", data=body,
                                      headers={"Content-Type": "application/x-ndjson"}, timeout=10)
                    if r.status_code == 200:
                        ack = r.json()
                        # A request is stored whole or not at all.
                        assert (ack["accepted"], ack["duplicates"]) in ((len(spans), 0), (0, len(spans))), ack
                        self.accepted += ack["accepted"]
                        self.duplicates += ack["duplicates"]
                        self.lost_answers += ack["duplicates"] > 0
                        self.acked_ids.update(s["span_id"] for s in spans)
                        break
                    self.failures += 1
                except requests.RequestException:
                    self.failures += 1
                time.sleep(0.02)
            n += 1


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(lumen):
    rng = random.Random(int(os.environ.get("LUMEN_CRASH_SEED", "20261128")))
    server = lumen(args=["--flush-age", "300ms", "--wal-segment", "256KiB"])
    clients = [Client(server, i) for i in range(3)]
    for c in clients:
        c.start()
    kills = 6
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.5))
        server.kill()
        time.sleep(rng.uniform(0.0, 0.3))
        server.start()
    time.sleep(0.5)
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(timeout=120)
        assert not c.is_alive()

    acked = set().union(*(c.acked_ids for c in clients))
    assert len(acked) > 500, "the clients made progress between kills"
    assert sum(c.failures for c in clients) > 0, "the kills interrupted requests"
    count = server.scalar("SELECT count(*) FROM spans")
    distinct = server.scalar("SELECT count(DISTINCT span_id) FROM spans")
    assert count == len(acked), (count, len(acked))
    assert distinct == count, "no span_id appears twice"
    # Every span was either acknowledged as new, or stored by an attempt whose answer the kill swallowed
    # and then acknowledged as a duplicate on the retry: never both, never neither.
    assert sum(c.accepted + c.duplicates for c in clients) == count
    print(f"acknowledged {count} spans; {sum(c.lost_answers for c in clients)} batches had their answer lost "
          f"to a kill after they were durable; {sum(c.failures for c in clients)} failed attempts")

    # One more kill, with a torn record appended to the newest WAL segment (as if a write was cut off
    # mid-record): replay drops it and still finds every acknowledged span.
    server.kill()
    segments = sorted((server.data_dir / "wal").glob("*.wal"))
    if segments:
        with open(segments[-1], "ab") as f:
            f.write(b"\x40\x00\x00\x00garbage-that-is-not-a-record")
    server.start()
    assert server.scalar("SELECT count(*) FROM spans") == len(acked)
    server.wait_flushed()
    assert server.scalar("SELECT count(DISTINCT span_id) FROM spans") == len(acked)
