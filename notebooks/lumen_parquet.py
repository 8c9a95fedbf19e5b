"""Read Lumen's span store from Python: the Parquet files its manifest lists, local or on S3.

Lumen writes `spans/date=YYYY-MM-DD/hour=HH/<uuid>.parquet` under its storage root (the `--data-dir`, or
the `--storage` directory or `s3://bucket/prefix`) and records every committed file in a manifest under
`_lumen/manifest/`. A directory glob sees the same files *plus* any file a crash left between writing it
and committing it (the server deletes those at its next start once they are 15 minutes old); reading the
manifest's list gives exactly the rows Lumen's own SQL sees. This module does that:

    import lumen_parquet, duckdb
    m = lumen_parquet.read_manifest("s3://my-bucket/lumen")       # or "./lumen-data"
    ds = m.dataset()                                               # a pyarrow.dataset.Dataset
    con = duckdb.connect(); con.register("spans", ds)
    con.sql("SELECT request_model, quantile_cont(duration_ms, 0.9) FROM spans GROUP BY 1").df()

S3 goes through pyarrow's own S3 filesystem (the standard AWS credential chain: environment, profiles,
SSO, IRSA, instance roles), so nothing has to be downloaded at run time (DuckDB's httpfs extension would be).

Only pyarrow is required; the manifest format is the one in storage/src/manifest.rs (format version 1).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import pyarrow.dataset as pads
import pyarrow.fs as pafs

MANIFEST_PREFIX = "_lumen/manifest"
DATA_PREFIX = "spans"
FORMAT_VERSION = 1
_DELTA = re.compile(r"^(\d+)\.json$")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)\.json$")


@dataclass(frozen=True)
class FileMeta:
    """One committed Parquet file (paths are relative to the storage root)."""

    path: str
    size: int
    rows: int
    min_time_ns: int
    max_time_ns: int
    created_ns: int


@dataclass
class Manifest:
    """The state of the manifest at one sequence number."""

    location: str
    filesystem: pafs.FileSystem
    root: str
    seq: int = 0
    files: Dict[str, FileMeta] = field(default_factory=dict)
    writers: Dict[str, int] = field(default_factory=dict)
    from_manifest: bool = True

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files.values())

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def select(self, since_ns: Optional[int] = None, until_ns: Optional[int] = None) -> List[FileMeta]:
        """Files that may hold spans with since_ns <= start_time < until_ns (by the manifest's time ranges)."""
        out = []
        for f in sorted(self.files.values(), key=lambda f: (f.min_time_ns, f.path)):
            if since_ns is not None and f.max_time_ns < since_ns:
                continue
            if until_ns is not None and f.min_time_ns >= until_ns:
                continue
            out.append(f)
        return out

    def containing(self, times_ns: Iterable[int]) -> List[FileMeta]:
        """Files whose time range covers any of the given start times (to fetch a few known spans)."""
        times = sorted(set(int(t) for t in times_ns))
        return [f for f in sorted(self.files.values(), key=lambda f: (f.min_time_ns, f.path))
                if any(f.min_time_ns <= t <= f.max_time_ns for t in times)]

    def paths(self, since_ns: Optional[int] = None, until_ns: Optional[int] = None) -> List[str]:
        """Full paths (for self.filesystem) of the selected files."""
        return [_join(self.root, f.path) for f in self.select(since_ns, until_ns)]

    def dataset(self, since_ns: Optional[int] = None, until_ns: Optional[int] = None, skip_missing: bool = True,
                files: Optional[List[FileMeta]] = None) -> pads.Dataset:
        """A pyarrow dataset over the committed files (optionally only those that overlap a time range, or the
        given files, e.g. from containing()).

        DuckDB, pandas and Polars read it directly: duckdb.register("spans", ds), ds.to_table().to_pandas(),
        polars.scan_pyarrow_dataset(ds).

        skip_missing: leave out (with a warning) files the manifest lists but the store no longer has, e.g.
        Parquet files an S3 lifecycle rule expired after the retention period. It costs one listing of the
        date partitions involved."""
        selected = list(files) if files is not None else self.select(since_ns, until_ns)
        if skip_missing and selected:
            existing = self._existing({f.path.split("/")[1] for f in selected if f.path.count("/") >= 3})
            missing = [f for f in selected if f.path not in existing]
            if missing:
                warnings.warn(
                    f"{len(missing)} of {len(selected)} files listed in the manifest are gone from {self.location} "
                    f"(expired by a retention rule?); reading the other {len(selected) - len(missing)}",
                    stacklevel=2,
                )
                selected = [f for f in selected if f.path in existing]
        if not selected:
            raise ValueError(f"no Parquet files in {self.location} for the requested time range")
        return pads.dataset([_join(self.root, f.path) for f in selected], filesystem=self.filesystem, format="parquet")

    def _existing(self, partitions: Iterable[str]) -> set:
        """Relative paths of the data files under spans/<partition>/ for each date partition given."""
        out = set()
        prefix_len = len(self.root.rstrip("/")) + 1
        for part in sorted(partitions):
            selector = pafs.FileSelector(_join(self.root, f"{DATA_PREFIX}/{part}"), recursive=True, allow_not_found=True)
            for info in self.filesystem.get_file_info(selector):
                if info.type == pafs.FileType.File:
                    out.add(info.path[prefix_len:])
        return out

    @property
    def time_range_ns(self) -> Tuple[Optional[int], Optional[int]]:
        if not self.files:
            return None, None
        return (min(f.min_time_ns for f in self.files.values()), max(f.max_time_ns for f in self.files.values()))


def open_location(location: str, s3_endpoint: Optional[str] = None, region: Optional[str] = None) -> Tuple[pafs.FileSystem, str]:
    """(filesystem, root path) for a local directory or s3://bucket/prefix."""
    if location.startswith("s3://"):
        bucket_and_prefix = location[len("s3://"):].strip("/")
        if not bucket_and_prefix:
            raise ValueError(f"not an S3 location: {location!r}")
        bucket = bucket_and_prefix.split("/", 1)[0]
        kwargs = {}
        endpoint = s3_endpoint or os.environ.get("LUMEN_S3_ENDPOINT")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs["endpoint_override"] = host.rstrip("/") if host else endpoint
            kwargs["scheme"] = scheme if host else "https"
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region and not endpoint:
            region = pafs.resolve_s3_region(bucket)
        if region:
            kwargs["region"] = region
        return pafs.S3FileSystem(**kwargs), bucket_and_prefix
    if "://" in location:
        raise ValueError(f"unsupported location {location!r}: use a directory or s3://bucket/prefix")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel.lstrip('/')}"


def _read_json(fs: pafs.FileSystem, path: str):
    with fs.open_input_stream(path) as f:
        return json.loads(f.read())


def _check_version(path: str, doc: dict) -> None:
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: manifest format version {doc.get('version')!r}, this reader knows {FORMAT_VERSION}")


def _file(d: dict) -> FileMeta:
    return FileMeta(
        path=d["path"],
        size=int(d["size"]),
        rows=int(d["rows"]),
        min_time_ns=int(d["min_time_ns"]),
        max_time_ns=int(d["max_time_ns"]),
        created_ns=int(d["created_ns"]),
    )


def _list_manifest(fs: pafs.FileSystem, root: str) -> Tuple[List[int], List[int]]:
    selector = pafs.FileSelector(_join(root, MANIFEST_PREFIX), allow_not_found=True)
    deltas, checkpoints = [], []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        name = info.path.rsplit("/", 1)[-1]
        if m := _DELTA.match(name):
            deltas.append(int(m.group(1)))
        elif m := _CHECKPOINT.match(name):
            checkpoints.append(int(m.group(1)))
    return sorted(deltas), sorted(checkpoints)


def read_manifest(location: str, s3_endpoint: Optional[str] = None, region: Optional[str] = None, attempts: int = 5) -> Manifest:
    """Load the latest checkpoint and every delta after it, as the server does at start-up.

    A delta can vanish between the listing and the read when a running server writes a checkpoint and
    removes old deltas; the load then starts over from the newer checkpoint. Without any manifest (for
    example a copy of only the spans/ directory) it falls back to every Parquet file under spans/, with
    a warning."""
    fs, root = open_location(location, s3_endpoint, region)
    last_error: Optional[Exception] = None
    for _ in range(attempts):
        deltas, checkpoints = _list_manifest(fs, root)
        if not deltas and not checkpoints:
            return _glob_fallback(location, fs, root)
        state = Manifest(location=location, filesystem=fs, root=root)
        try:
            if checkpoints:
                path = _join(root, f"{MANIFEST_PREFIX}/checkpoint-{checkpoints[-1]:020}.json")
                cp = _read_json(fs, path)
                _check_version(path, cp)
                state.seq = int(cp["seq"])
                state.files = {f["path"]: _file(f) for f in cp.get("files", [])}
                state.writers = {k: int(v) for k, v in (cp.get("writers") or {}).items()}
            for seq in (s for s in deltas if s > state.seq):
                if seq != state.seq + 1:
                    raise FileNotFoundError(f"manifest delta {state.seq + 1} is missing (a checkpoint replaced it)")
                path = _join(root, f"{MANIFEST_PREFIX}/{seq:020}.json")
                delta = _read_json(fs, path)
                _check_version(path, delta)
                for removed in delta.get("removed") or []:
                    state.files.pop(removed, None)
                for added in delta.get("added") or []:
                    state.files[added["path"]] = _file(added)
                writer = delta["writer_id"]
                state.writers[writer] = max(state.writers.get(writer, 0), int(delta["wal_seq"]))
                state.seq = int(delta["seq"])
            return state
        except FileNotFoundError as e:  # raced with a checkpoint: list again
            last_error = e
    raise RuntimeError(f"could not read a consistent manifest from {location} after {attempts} attempts: {last_error}")


def _glob_fallback(location: str, fs: pafs.FileSystem, root: str) -> Manifest:
    selector = pafs.FileSelector(_join(root, DATA_PREFIX), recursive=True, allow_not_found=True)
    infos = [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
    if not infos:
        raise FileNotFoundError(f"no Lumen manifest and no Parquet files under {location}")
    warnings.warn(
        f"{location} has no Lumen manifest ({MANIFEST_PREFIX}/): reading every Parquet file under {DATA_PREFIX}/ "
        "(files left by a crash, if any, are included)",
        stacklevel=3,
    )
    import pyarrow.parquet as pq

    files = {}
    for info in infos:
        rel = info.path[len(root.rstrip("/")) + 1:]
        md = pq.ParquetFile(info.path, filesystem=fs).metadata
        lo, hi = _time_range(md)
        files[rel] = FileMeta(path=rel, size=info.size or 0, rows=md.num_rows, min_time_ns=lo, max_time_ns=hi, created_ns=0)
    return Manifest(location=location, filesystem=fs, root=root, files=files, from_manifest=False)


def _time_range(md) -> Tuple[int, int]:
    """start_time min/max from the row-group statistics (nanoseconds)."""
    lo, hi = None, None
    idx = md.schema.names.index("start_time")
    for rg in range(md.num_row_groups):
        st = md.row_group(rg).column(idx).statistics
        if st is None or not st.has_min_max:
            return -(2**63), 2**63 - 1
        a, b = _ns(st.min), _ns(st.max)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return (lo if lo is not None else 0), (hi if hi is not None else 0)


def _ns(v) -> int:
    if isinstance(v, int):
        return v
    import pandas as pd  # statistics come back as datetime objects

    return int(pd.Timestamp(v).value)


# --- content helpers -----------------------------------------------------------------------------------

def message_text(messages_json: Optional[str], role: Optional[str] = "user", last: bool = True, limit: Optional[int] = 300) -> Optional[str]:
    """The text of one message from an OTel GenAI message list (input_messages / output_messages).

    role: only messages with this role (None: any); last: the last such message, else the first. Text parts
    are joined; other parts (tool calls, images) are shown as [type]. limit truncates with an ellipsis."""
    if not messages_json:
        return None
    try:
        messages = json.loads(messages_json)
    except (TypeError, ValueError):
        return str(messages_json)[:limit] if limit else str(messages_json)
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        return None
    chosen = [m for m in messages if isinstance(m, dict) and (role is None or m.get("role") == role)]
    if not chosen:
        return None
    message = chosen[-1] if last else chosen[0]
    text = _parts_text(message.get("parts"))
    if text is None and isinstance(message.get("content"), str):
        text = message["content"]
    if text is None:
        return None
    text = " ".join(text.split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def _parts_text(parts: Optional[Iterable]) -> Optional[str]:
    if not isinstance(parts, list):
        return None
    out = []
    for p in parts:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "text" and isinstance(p.get("content"), str):
            out.append(p["content"])
        elif p.get("type"):
            out.append(f"[{p['type']}]")
    return " ".join(out) if out else None
