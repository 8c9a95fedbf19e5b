"""Helpers for the OTLP tests: OTLP/JSON and protobuf trace export bodies, posting them to lumen's /v1/traces,
reading the stored rows back over SQL, and reading what lumen wrote to disk (WAL records and Parquet files)
so that a test can say what is *stored*, not only what a query shows."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import struct
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[1] / "ingest" / "tests" / "fixtures" / "otlp"

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# OTLP enums (opentelemetry/proto/trace/v1/trace.proto).
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 1, 2, 3, 4, 5
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def trace_id() -> str:
    return os.urandom(16).hex()


def span_id() -> str:
    return os.urandom(8).hex()


# --- OTLP/JSON -----------------------------------------------------------------------------------------


def any_value(v):
    """A Python value as an OTLP/JSON AnyValue (int64 as a string, as the protobuf JSON mapping writes it)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": key_values(v)}}
    raise TypeError(f"no AnyValue for {v!r}")


def key_values(d: dict) -> list:
    return [{"key": k, "value": any_value(v)} for k, v in d.items()]


def span(name, trace=None, sid=None, parent=None, kind=KIND_CLIENT, start=None, end=None, duration_ms=800.0,
         attrs=None, events=None, status=None, status_message=None):
    """One OTLP/JSON span. `start`/`end` are Unix ns (None: now - 60 s / start + duration); pass
    start=False to leave startTimeUnixNano out altogether."""
    if start is None:
        start = time.time_ns() - 60 * 10**9
    if end is None and start is not False:
        end = start + int(duration_ms * 1e6)
    s = {"traceId": trace or trace_id(), "spanId": sid or span_id(), "name": name, "kind": kind,
         "attributes": key_values(attrs or {})}
    if parent:
        s["parentSpanId"] = parent
    if start is not False:
        s["startTimeUnixNano"] = str(start)
    if end is not None:
        s["endTimeUnixNano"] = str(end)
    if events:
        s["events"] = [{"timeUnixNano": str(e.get("time", start or time.time_ns())), "name": e["name"],
                        "attributes": key_values(e.get("attrs", {}))} for e in events]
    if status is not None:
        s["status"] = {"code": status}
        if status_message:
            s["status"]["message"] = status_message
    return s


def request(spans, resource=None, scope="lumen.tests", scope_version="1.0.0") -> dict:
    """An ExportTraceServiceRequest in OTLP/JSON with one resource and one scope."""
    return {"resourceSpans": [{
        "resource": {"attributes": key_values(resource if resource is not None else {"service.name": "otlp-test"})},
        "scopeSpans": [{"scope": {"name": scope, "version": scope_version}, "spans": list(spans)}],
    }]}


def to_protobuf(req: dict) -> bytes:
    """The same request as protobuf bytes: hex ids become bytes (ParseDict expects base64 for bytes fields)."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = copy.deepcopy(req)
    for rs in req["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in s:
                        s[key] = base64.b64encode(bytes.fromhex(s[key])).decode()
    return ParseDict(req, ExportTraceServiceRequest()).SerializeToString()


# --- posting -------------------------------------------------------------------------------------------


def post_traces(server, body: bytes, content_type=JSON, gzip_body=False, headers=None, timeout=30):
    h = {"Content-Type": content_type}
    if gzip_body:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    h.update(headers or {})
    return requests.post(server.url + "/v1/traces", data=body, headers=h, timeout=timeout)


def post_json(server, req: dict, **kw):
    return post_traces(server, json.dumps(req).encode(), JSON, **kw)


def post_protobuf(server, req, **kw):
    body = req if isinstance(req, bytes) else to_protobuf(req)
    return post_traces(server, body, PROTOBUF, **kw)


def export_response(r) -> dict:
    """The ExportTraceServiceResponse of a 200, decoded from the response's own encoding, as
    {"rejected": int, "message": str}."""
    ctype = r.headers.get("Content-Type", "")
    if ctype.startswith(PROTOBUF):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        msg = ExportTraceServiceResponse()
        msg.ParseFromString(r.content)
        return {"rejected": msg.partial_success.rejected_spans, "message": msg.partial_success.error_message,
                "content_type": ctype}
    assert ctype.startswith(JSON), f"expected a JSON or protobuf ExportTraceServiceResponse, got Content-Type {ctype!r}"
    body = r.json() if r.content else {}
    partial = body.get("partialSuccess") or {}
    return {"rejected": int(partial.get("rejectedSpans", 0) or 0), "message": partial.get("errorMessage", "") or "",
            "content_type": ctype}


def rpc_status(r) -> dict:
    """The google.rpc.Status of an error answer, decoded from the response's own encoding."""
    ctype = r.headers.get("Content-Type", "")
    if ctype.startswith(PROTOBUF):
        from google.rpc.status_pb2 import Status

        msg = Status()
        msg.ParseFromString(r.content)
        return {"code": msg.code, "message": msg.message, "content_type": ctype}
    assert ctype.startswith(JSON), f"expected a google.rpc.Status as JSON or protobuf, got Content-Type {ctype!r}: {r.text[:300]}"
    body = r.json()
    return {"code": body.get("code"), "message": body.get("message", ""), "content_type": ctype}


# --- reading rows back ---------------------------------------------------------------------------------

COLUMNS = ["trace_id", "span_id", "parent_span_id", "start_time", "end_time", "duration_ms", "ttft_ms", "source",
           "span_kind", "host", "service_name", "k8s_namespace", "k8s_pod", "container_id", "pid", "process_name",
           "exe", "server_address", "server_port", "tls_library", "http_method", "url_path", "http_status",
           "provider", "operation", "request_model", "response_model", "response_id", "streaming",
           "finish_reasons", "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
           "reasoning_tokens", "cost_usd", "temperature", "top_p", "max_tokens", "error_type", "error_message",
           "input_messages", "output_messages", "system_instructions", "tool_definitions", "capture_flags",
           "duplicate_of"]
ATTRS = ["otel.span_name", "otel.span_kind", "otel.scope.name", "lumen.merged_with"]


_described: dict = {}


def table_columns(server, table: str) -> list[str]:
    """The columns `table` has (DESCRIBE), remembered per server."""
    key = (server.url, server.starts, table)
    if key not in _described:
        _described[key] = [r[0] for r in server.rows(f"DESCRIBE {table}")]
    return _described[key]


def rows(server, where="true", table="spans", attrs=()):
    """Rows as dicts: the contract's columns (times as Unix ns) and `attr:<key>` for attributes[<key>].
    A contract column the table does not have (e.g. `duplicate_of` in a view that hides it) is left out of
    the dicts."""
    keys = list(ATTRS) + [a for a in attrs if a not in ATTRS]
    present = set(table_columns(server, table))
    columns = [c for c in COLUMNS if c in present]
    exprs = [f"CAST({c} AS BIGINT) AS {c}" if c in ("start_time", "end_time") else c for c in columns]
    exprs += [f"attributes['{k}']" for k in keys]
    r = server.sql(f"SELECT {', '.join(exprs)} FROM {table} WHERE {where} ORDER BY start_time, span_id")
    assert r.status_code == 200, f"SQL over {table} failed: {r.status_code} {r.text[:2000]}"
    names = columns + [f"attr:{k}" for k in keys]
    return [dict(zip(names, row)) for row in r.json()["rows"]]


def by_name(rs) -> dict:
    """Rows keyed by their OTLP span name (attributes['otel.span_name'])."""
    return {r["attr:otel.span_name"]: r for r in rs}


def parsed(text):
    """A JSON text column parsed (None stays None)."""
    return None if text is None else json.loads(text)


# --- what is on disk -----------------------------------------------------------------------------------


def wal_tables(data_dir: Path):
    """Every record of every WAL segment under data_dir/wal, decoded as lumen writes it (ingest/src/wal.rs:
    an 8-byte magic `LUMENWAL` and a u32 version, then records `len u32 | crc32c u32 | seq u64 | payload`,
    the payload an Arrow IPC stream). pyarrow decodes IPC body compression (LZ4/ZSTD) if the writer uses
    it, so the text of the decoded tables is the content whatever the encoding. Returns (raw bytes of all
    files, [pyarrow.Table])."""
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    raw, tables = b"", []
    wal = Path(data_dir) / "wal"
    for path in sorted(p for p in wal.rglob("*") if p.is_file()):
        data = path.read_bytes()
        raw += data
        if data[:8] != b"LUMENWAL":
            continue
        pos = 12
        while pos + 16 <= len(data):
            length, _crc, _seq = struct.unpack_from("<IIQ", data, pos)
            payload = data[pos + 16:pos + 16 + length]
            if length == 0 or len(payload) < length:
                break
            pos += 16 + length
            tables.append(pa.ipc.open_stream(pa.BufferReader(payload)).read_all())
    return raw, tables


def table_text(table) -> str:
    """All non-timestamp values of an Arrow table as one JSON text (to search for planted values)."""
    return json.dumps({name: table.column(name).to_pylist() for name in table.column_names
                       if not str(table.schema.field(name).type).startswith("timestamp")}, default=str)


def parquet_tables(data_dir: Path):
    import pyarrow.parquet as pq

    files = sorted((Path(data_dir) / "spans").rglob("*.parquet"))
    return [(f, f.read_bytes(), pq.read_table(f)) for f in files]


# --- comparing -----------------------------------------------------------------------------------------


def mismatches(row: dict, expected: dict) -> list[str]:
    """`field: expected X, got Y` for every expected field the row does not have (floats to 1e-9 relative)."""
    out = []
    for key, want in expected.items():
        got = row.get(key)
        if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
            ok = abs(got - want) <= 1e-9 * max(1.0, abs(want))
        else:
            ok = got == want
        if not ok:
            out.append(f"{key}: expected {want!r}, got {got!r}")
    return out


def check(row: dict, expected: dict, what: str):
    problems = mismatches(row, expected)
    assert not problems, f"{what}:\n  " + "\n  ".join(problems) + f"\nrow: {json.dumps(row, default=str)[:3000]}"


def one(server, where: str, what: str, table="spans", attrs=()) -> dict:
    got = rows(server, where, table=table, attrs=attrs)
    assert len(got) == 1, f"expected exactly one row in {table} for {what} ({where}), got {len(got)}: " + \
        json.dumps([(r['span_id'], r['source'], r['attr:otel.span_name']) for r in got])
    return got[0]


# --- the instrumented client ---------------------------------------------------------------------------


def run_otel_client(instrumentation: str, base_url: str, endpoint: str, n: int, env=None, args=(), timeout=600):
    """Runs otel_clients.py in a process of its own; returns its JSON report."""
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
    proc = subprocess.run([sys.executable, str(HERE / "otel_clients.py"), instrumentation, base_url, endpoint, str(n),
                           *args], env=dict(clean, **(env or {})), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"the instrumented client ({instrumentation}) failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- reading the captured fixtures -----------------------------------------------------------------------


def fixture_spans(name: str):
    """(resource attributes, scope name, span name, kind, status, span attributes, events, ids) of every span of
    ingest/tests/fixtures/otlp/<name>, decoded with the opentelemetry-proto classes."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    req.ParseFromString((FIXTURES / name).read_bytes())
    out = []
    for rs in req.resource_spans:
        resource = {kv.key: decoded_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "resource": resource, "scope": ss.scope.name, "name": s.name, "kind": s.kind,
                    "status": s.status.code, "status_message": s.status.message,
                    "attrs": {kv.key: decoded_value(kv.value) for kv in s.attributes},
                    "events": [(e.name, {kv.key: decoded_value(kv.value) for kv in e.attributes}) for e in s.events],
                    "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex() or None,
                    "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                })
    return out


def decoded_value(v):
    """An OTLP AnyValue (protobuf) as a Python value."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [decoded_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: decoded_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None
