"""End-to-end: lumen-redact's labelled corpus (thousands of realistic documents — chat, tickets, code, logs,
JSON, several languages — with sensitive values of every kind planted, and look-alikes that must survive)
sent through a real `lumen serve` on its default capture policy (`redacted`), half as `/v1/spans`, half as
OTLP `/v1/traces`. Afterwards not one planted value is found in what was stored — the WAL records, the
Parquet files after a flush, nor the SQL answers — and the look-alikes are still there. Recall and precision
per kind, as stored, are printed."""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict

import pytest

from lumen_harness import LUMEN_BIN
from otlp_harness import parquet_tables, post_json, request, span, wal_tables

DOCUMENTS = 3000
BATCH = 250


def _corpus(tmp_path):
    out = tmp_path / "corpus.json"
    bench = LUMEN_BIN.with_name("lumen-bench")
    subprocess.run([str(bench), "redaction-corpus", "--documents", str(DOCUMENTS), "--out", str(out)], check=True)
    return json.loads(out.read_text())


def _content_column(doc) -> str:
    # JSON documents go where JSON text lives (the engine walks their keys and values); prose is a message.
    return "tool_definitions" if doc["format"] == "json" else "input_messages"


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _stored_text(row_value: str | None, doc) -> str:
    """The stored content of a document; for JSON documents also every string in it, unescaped, so a
    value that JSON escapes (a private key's newlines) cannot hide behind a different escaping."""
    if row_value is None:
        return ""
    if _content_column(doc) == "tool_definitions":
        try:
            return row_value + "\n" + "\n".join(_strings(json.loads(row_value)))
        except ValueError:
            return row_value
    return json.loads(row_value)[0]["parts"][0]["content"]


def _forms(value: str, doc) -> list[str]:
    """A planted value as it may appear stored: as written in the document and, in JSON, unescaped."""
    forms = [value]
    if doc["format"] == "json":
        try:
            forms.append(json.loads(f'"{value}"'))
        except ValueError:
            pass
    return forms


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Sends the corpus, flushes, and collects each document's stored text from the WAL, Parquet and SQL."""
    from lumen_harness import LumenServer

    tmp = tmp_path_factory.mktemp("corpus")
    docs = _corpus(tmp)
    assert len(docs) == DOCUMENTS
    server = LumenServer(tmp / "data", args=["--flush-age", "1h"], log_dir=tmp).start()
    try:
        for start in range(0, len(docs), BATCH):
            chunk = list(enumerate(docs[start:start + BATCH], start))
            if (start // BATCH) % 2 == 0:
                spans = []
                for i, doc in chunk:
                    content = doc["text"] if _content_column(doc) == "tool_definitions" else \
                        [{"role": "user", "parts": [{"type": "text", "content": doc["text"]}]}]
                    spans.append({"span_id": f"doc{i}", "start_time": 1_795_852_800_000_000_000 + i,
                                  "provider": "openai", "request_model": "gpt-4o-mini",
                                  _content_column(doc): content})
                r = server.ingest(spans)
                assert r.status_code == 200, r.text
            else:
                otlp = []
                for i, doc in chunk:
                    key = "gen_ai.tool.definitions" if _content_column(doc) == "tool_definitions" else "gen_ai.input.messages"
                    value = doc["text"] if key == "gen_ai.tool.definitions" else json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": doc["text"]}]}])
                    otlp.append(span(f"doc {i}", sid=f"{i:016x}", attrs={"gen_ai.request.model": "gpt-4o-mini", key: value}))
                r = post_json(server, request(otlp))
                assert r.status_code == 200, r.text
        ids = {f"doc{i}": i for i in range(DOCUMENTS)} | {f"{i:016x}": i for i in range(DOCUMENTS)}

        def collect(tables):
            found = {}
            for table in tables:
                cols = {c: table.column(c).to_pylist() for c in ("span_id", "input_messages", "tool_definitions")}
                for n, sid in enumerate(cols["span_id"]):
                    if sid in ids:
                        i = ids[sid]
                        found[i] = _stored_text(cols[_content_column(docs[i])][n], docs[i])
            return found

        wal = collect(wal_tables(server.data_dir)[1])
        rows = server.rows("SELECT span_id, input_messages, tool_definitions FROM spans")
        sql = {}
        for sid, messages, tools in rows:
            i = ids[sid]
            sql[i] = _stored_text(tools if _content_column(docs[i]) == "tool_definitions" else messages, docs[i])
        server.restart()  # a clean stop flushes everything to Parquet
        parquet = collect(table for _, _, table in parquet_tables(server.data_dir))
        yield docs, {"WAL": wal, "SQL": sql, "Parquet": parquet}
    finally:
        server.kill()


def test_every_document_is_stored_once_everywhere(stored):
    docs, where = stored
    for name, texts in where.items():
        assert len(texts) == len(docs), f"expected all {len(docs)} documents in the {name}, found {len(texts)}"


def test_no_planted_value_is_stored_and_look_alikes_survive(stored):
    docs, where = stored
    planted, leaked = Counter(), defaultdict(list)
    decoys, kept = Counter(), Counter()
    for i, doc in enumerate(docs):
        texts = {name: found[i] for name, found in where.items()}
        for p in doc["planted"]:
            planted[p["kind"]] += 1
            for name, text in texts.items():
                if any(form in text for form in _forms(p["value"], doc)):
                    leaked[p["kind"]].append((name, i, p["value"]))
        for d in doc["decoys"]:
            decoys[d["what"]] += 1
            kept[d["what"]] += all(d["value"] in text for text in texts.values())
    print(f"\nplanted values per kind, as stored (WAL, Parquet, SQL) after `redacted` ingest of {len(docs)} documents:")
    for kind in sorted(planted):
        recall = 1 - len({(i, v) for _, i, v in leaked.get(kind, [])}) / planted[kind]
        print(f"  {kind:<14} planted {planted[kind]:>5}  stored-redacted {recall:7.2%}")
    print("look-alikes kept intact:")
    for what in sorted(decoys):
        print(f"  {what:<24} {kept[what]:>5} / {decoys[what]:<5} {kept[what] / decoys[what]:7.2%}")
    assert sum(planted.values()) > 5000, f"expected thousands of planted values, got {sum(planted.values())}"
    assert not any(leaked.values()), "planted values stored: " + "; ".join(
        f"{kind}: {len(v)} e.g. {v[:3]}" for kind, v in leaked.items())
    overall = sum(kept.values()) / sum(decoys.values())
    assert overall >= 0.95, f"expected at least 95% of the look-alikes kept, got {overall:.2%}"
