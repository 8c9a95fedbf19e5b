"""Makes the scripted LLM calls of replay_harness in a process of its own, as an application that knows
nothing of Lumen would, and writes what each client reported (pickled records) to a file.

    python sensor_clients.py BASE_URL OUT.pickle [CALL_NAME ...]

TLS trust comes from the standard variables (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE,
CURL_CA_BUNDLE), as it would for an application pointed at a private endpoint. With LUMEN_TEST_WAIT_FOR_GO
set it loads its TLS library, prints `ready` and waits for a line on stdin before calling."""

import os
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from replay_harness import CALLS, run_calls  # noqa: E402


def main():
    url, out, *names = sys.argv[1:]
    if os.environ.get("LUMEN_TEST_WAIT_FOR_GO"):
        # Load the TLS library first, then wait until the test lets the calls begin.
        import ssl  # noqa: F401

        print("ready", flush=True)
        sys.stdin.readline()
    calls = [c for c in CALLS if not names or c[0] in names]
    records = run_calls(url, calls)
    Path(out).write_bytes(pickle.dumps(records))


if __name__ == "__main__":
    main()
