import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lumen_harness import LumenServer, MotoServer  # noqa: E402


@pytest.fixture
def lumen(tmp_path):
    """Factory for real `lumen serve` processes; all are stopped at the end of the test."""
    started = []

    def make(args=(), env=None, data_dir=None, port=None, start=True):
        server = LumenServer(data_dir or tmp_path / f"data{len(started)}", args=args, env=env, port=port, log_dir=tmp_path)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto, request):
    name = "lumen-" + request.node.name.replace("_", "-").lower()[:40]
    moto.client().create_bucket(Bucket=name)
    return name
