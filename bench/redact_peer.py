"""The redaction peer for `lumen-bench run`: scrubadub (a maintained Python PII scrubber, regex and
phonenumbers based) cleaning the very texts lumen-redact is measured on, one thread.

usage: redact_peer.py TEXTS.json MIN_SECONDS  ->  {"mb_per_s": float, "passes": int}
TEXTS.json is a JSON array of strings; the set is cleaned repeatedly until MIN_SECONDS have passed."""

import json
import sys
import time

import scrubadub


def main() -> None:
    texts = json.load(open(sys.argv[1], encoding="utf-8"))
    min_seconds = float(sys.argv[2])
    scrubber = scrubadub.Scrubber()
    size = sum(len(t.encode("utf-8")) for t in texts)
    passes = 0
    started = time.perf_counter()
    while True:
        for text in texts:
            scrubber.clean(text)
        passes += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            break
    print(json.dumps({"mb_per_s": size * passes / elapsed / 1e6, "passes": passes}))


if __name__ == "__main__":
    main()
