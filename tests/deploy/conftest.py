import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "notebooks"))

from lumen_env import S3_ENV, Lumen, Moto, generate_week, plant_orphan  # noqa: E402

CALL_FILTER = "provider IS NOT NULL AND coalesce(span_kind, 'client') = 'client'"


@pytest.fixture(scope="session")
def week_spans(tmp_path_factory):
    return generate_week(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="session")
def local_lumen(tmp_path_factory, week_spans):
    """A real `lumen serve` on local storage holding a week of spans, all flushed to Parquet, plus one
    orphan file (what a crash between writing a file and committing it leaves) that only a glob sees."""
    work = tmp_path_factory.mktemp("local")
    server = Lumen(work / "data", args=["--flush-age", "1s"]).start()
    try:
        server.ingest(week_spans)
        server.wait_flushed(len(week_spans))
        import lumen_parquet

        committed = lumen_parquet.read_manifest(str(server.data_dir)).files
        server.orphan = plant_orphan(server.data_dir, committed)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_lumen(tmp_path_factory, moto, week_spans):
    """A real `lumen serve` writing to s3://lumen-spans-test/lumen on the moto server: the three newest days of
    the week (moto is slow; the local store has the whole week)."""
    bucket = "lumen-spans-test"
    moto.client().create_bucket(Bucket=bucket)
    work = tmp_path_factory.mktemp("s3")
    args = ["--storage", f"s3://{bucket}/lumen", "--s3-endpoint", moto.endpoint, "--s3-allow-http", "--flush-age", "1s"]
    server = Lumen(work / "data", args=args, env=S3_ENV).start()
    try:
        spans = week_spans[: 3 * 600]
        server.ingest(spans)
        server.wait_flushed(len(spans))
        server.location = f"s3://{bucket}/lumen"
        server.s3_endpoint = moto.endpoint
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)
