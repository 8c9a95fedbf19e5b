"""notebooks/lumen_parquet.py: the manifest reader the notebook uses, against a real `lumen serve` (local and
S3) and against manifests built by hand for the cases a live server rarely shows (checkpoints, removals,
deltas deleted by a checkpointing writer, expired files)."""

import json
import shutil
import warnings

import duckdb
import pyarrow.dataset as pads
import pytest

import lumen_parquet
from conftest import CALL_FILTER


def count(dataset, where="true"):
    con = duckdb.connect()
    con.register("spans", dataset)
    return con.sql(f"SELECT count(*) FROM spans WHERE {where}").fetchall()[0][0]


def test_reads_exactly_what_lumen_sees_and_not_the_orphan(local_lumen):
    m = lumen_parquet.read_manifest(str(local_lumen.data_dir))
    assert m.from_manifest
    assert local_lumen.orphan not in m.files
    total = local_lumen.sql("SELECT count(*) FROM spans")[0][0]
    assert m.rows == total
    ds = m.dataset()
    assert count(ds) == total
    assert count(ds, CALL_FILTER) == local_lumen.sql(f"SELECT count(*) FROM spans WHERE {CALL_FILTER}")[0][0]
    # A directory glob (what DuckDB's read_parquet('**/*.parquet') does) also reads the orphan.
    globbed = pads.dataset(str(local_lumen.data_dir / "spans"), format="parquet", partitioning="hive")
    assert count(globbed) > total


def test_time_window_prunes_files_by_the_manifest(local_lumen):
    m = lumen_parquet.read_manifest(str(local_lumen.data_dir))
    lo, hi = m.time_range_ns
    since = hi - 2 * 86_400 * 10**9
    selected = m.select(since_ns=since)
    assert 0 < len(selected) < len(m.files)
    expected = local_lumen.sql(f"SELECT count(*) FROM spans WHERE start_time >= to_timestamp_nanos({since})")[0][0]
    con = duckdb.connect()
    con.register("spans", m.dataset(since_ns=since))
    got = con.sql(f"SELECT count(*) FROM spans WHERE start_time >= make_timestamp_ns({since})::TIMESTAMPTZ_NS").fetchall()[0][0]
    assert got == expected


def test_files_gone_from_storage_are_skipped_with_a_warning(local_lumen, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(local_lumen.data_dir / "spans", copy / "spans")
    shutil.copytree(local_lumen.data_dir / "_lumen", copy / "_lumen")
    m = lumen_parquet.read_manifest(str(copy))
    victim = sorted(m.files.values(), key=lambda f: f.min_time_ns)[0]  # the oldest: what retention expires first
    (copy / victim.path).unlink()
    with pytest.warns(UserWarning, match="1 of .* files listed in the manifest are gone"):
        ds = m.dataset()
    assert count(ds) == m.rows - victim.rows


def test_reads_the_manifest_on_s3(s3_lumen, s3_env):
    m = lumen_parquet.read_manifest(s3_lumen.location, s3_endpoint=s3_lumen.s3_endpoint)
    total = s3_lumen.sql("SELECT count(*) FROM spans")[0][0]
    assert m.rows == total and m.from_manifest
    assert count(m.dataset()) == total


# --- manifests built by hand -------------------------------------------------------------------------

def entry(path, rows=1, t=0):
    return {"path": path, "size": 10, "rows": rows, "min_time_ns": t, "max_time_ns": t + 1, "created_ns": 0}


def write_manifest(root, name, doc):
    d = root / "_lumen" / "manifest"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(doc))


def delta(seq, added=(), removed=(), writer="w1", wal=None):
    return {"version": 1, "seq": seq, "writer_id": writer, "wal_seq": wal or seq, "added": list(added), "removed": list(removed)}


def test_checkpoint_then_deltas_with_removals(tmp_path):
    write_manifest(tmp_path, "checkpoint-00000000000000000100.json", {
        "version": 1, "seq": 100, "files": [entry("spans/a.parquet", 5), entry("spans/b.parquet", 7)], "writers": {"w1": 40},
    })
    # Deltas the checkpoint already covers are ignored, later ones applied in order.
    write_manifest(tmp_path, "00000000000000000099.json", delta(99, [entry("spans/old.parquet")]))
    write_manifest(tmp_path, "00000000000000000101.json", delta(101, [entry("spans/c.parquet", 3)], writer="w2", wal=9))
    write_manifest(tmp_path, "00000000000000000102.json", delta(102, [entry("spans/d.parquet", 2)], ["spans/a.parquet"], wal=41))
    m = lumen_parquet.read_manifest(str(tmp_path))
    assert sorted(m.files) == ["spans/b.parquet", "spans/c.parquet", "spans/d.parquet"]
    assert m.rows == 12 and m.seq == 102
    assert m.writers == {"w1": 41, "w2": 9}


def test_a_missing_delta_is_an_error_not_a_silent_gap(tmp_path):
    write_manifest(tmp_path, "00000000000000000001.json", delta(1, [entry("spans/a.parquet")]))
    write_manifest(tmp_path, "00000000000000000003.json", delta(3, [entry("spans/c.parquet")]))
    with pytest.raises(RuntimeError, match="delta 2 is missing"):
        lumen_parquet.read_manifest(str(tmp_path), attempts=2)


def test_an_unknown_format_version_is_refused(tmp_path):
    write_manifest(tmp_path, "00000000000000000001.json", dict(delta(1), version=2))
    with pytest.raises(ValueError, match="format version 2"):
        lumen_parquet.read_manifest(str(tmp_path))


def test_without_a_manifest_it_falls_back_to_the_files_with_a_warning(local_lumen, tmp_path):
    shutil.copytree(local_lumen.data_dir / "spans", tmp_path / "spans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lumen_parquet.read_manifest(str(tmp_path))
    assert not m.from_manifest
    assert any("no Lumen manifest" in str(w.message) for w in caught)
    lumen_total = local_lumen.sql("SELECT count(*) FROM spans")[0][0]
    assert m.rows > lumen_total, "the glob includes the orphan"
    lo, hi = m.time_range_ns
    assert lo <= hi


# --- message content ----------------------------------------------------------------------------------

def test_message_text():
    msgs = json.dumps([
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "first"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "f"}]},
        {"role": "user", "parts": [{"type": "text", "content": "what   is\nthe\tweather"}, {"type": "image"}]},
    ])
    assert lumen_parquet.message_text(msgs) == "what is the weather [image]"
    assert lumen_parquet.message_text(msgs, last=False) == "first"
    assert lumen_parquet.message_text(msgs, role="assistant") == "[tool_call]"
    assert lumen_parquet.message_text(msgs, role=None, last=False) == "be brief"
    assert lumen_parquet.message_text(json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 50}]}]), limit=10) == "x" * 9 + "\u2026"
    assert lumen_parquet.message_text(None) is None
    assert lumen_parquet.message_text("not json", limit=4) == "not "
    assert lumen_parquet.message_text(json.dumps([{"role": "user", "content": "plain"}])) == "plain"
