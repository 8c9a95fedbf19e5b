"""notebooks/llm_usage.ipynb executed end to end (jupyter nbconvert --execute) on spans a real `lumen serve`
wrote, local and on S3: no errors, its plots are there, and its numbers are Lumen's numbers."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import CALL_FILTER

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "llm_usage.ipynb"
MIN_PLOTS = 4


def execute(tmp_path, env):
    out_dir = tmp_path / "out"
    cmd = [
        str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.timeout=600", "--output-dir", str(out_dir), "--output", "executed", str(NOTEBOOK),
    ]
    run_env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline", **env)
    r = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"nbconvert failed:\n{r.stderr[-6000:]}"
    return nbformat.read(out_dir / "executed.ipynb", as_version=4)


def outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def check_ran_clean(nb):
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, "\n".join(f"{e.ename}: {e.evalue}" for e in errors)
    stderr = [o.text for o in outputs(nb) if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"the notebook wrote to stderr (warnings?):\n{''.join(stderr)}"
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= MIN_PLOTS, f"expected at least {MIN_PLOTS} plots, got {len(images)}"
    for code in (c for c in nb.cells if c.cell_type == "code"):
        assert code.execution_count is not None, "every code cell ran"


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_committed_notebook_is_clean_and_parameterised():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "LUMEN_DATA" in params[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_on_local_parquet_matches_lumen(local_lumen, tmp_path):
    export = tmp_path / "export"
    nb = execute(tmp_path, {"LUMEN_DATA": str(local_lumen.data_dir), "LUMEN_DAYS": "0", "LUMEN_EXPORT_DIR": str(export)})
    check_ran_clean(nb)

    # Its numbers are Lumen's numbers, though a glob of the directory would also have read the orphan.
    (overview,) = read_csv(export / "overview.csv")
    calls = local_lumen.sql(f"SELECT count(*) FROM spans WHERE {CALL_FILTER}")[0][0]
    assert int(overview["calls"]) == calls
    assert int(overview["models"]) == local_lumen.sql(f"SELECT count(DISTINCT request_model) FROM spans WHERE {CALL_FILTER}")[0][0]
    cost = local_lumen.sql(f"SELECT sum(cost_usd) FROM spans WHERE {CALL_FILTER}")[0][0]
    assert float(overview["cost_usd"]) == pytest.approx(cost, abs=0.006)

    lumen_p90 = {
        model: (n, p90)
        for model, n, p90 in local_lumen.sql(
            f"SELECT request_model, count(*), quantile_cont(duration_ms, 0.9) FROM spans "
            f"WHERE {CALL_FILTER} AND duration_ms IS NOT NULL GROUP BY request_model"
        )
    }
    latency = read_csv(export / "latency_by_model.csv")
    assert {r["model"] for r in latency} == set(lumen_p90)
    for r in latency:
        n, p90 = lumen_p90[r["model"]]
        assert int(r["calls"]) == n
        assert float(r["p90_ms"]) == pytest.approx(p90, rel=1e-9), r["model"]

    days = local_lumen.sql(
        f"SELECT count(DISTINCT date_trunc('day', start_time)) FROM spans WHERE {CALL_FILTER}"
    )[0][0]
    daily = read_csv(export / "daily_by_provider.csv")
    assert len({r["day"] for r in daily}) == days >= 7
    assert sum(int(r["calls"]) for r in daily) == calls

    errors = read_csv(export / "errors.csv")
    lumen_errors = local_lumen.sql(
        f"SELECT count(*) FROM spans WHERE {CALL_FILTER} AND (error_type IS NOT NULL OR http_status >= 400)"
    )[0][0]
    assert sum(int(r["calls"]) for r in errors) == lumen_errors > 0

    slowest = read_csv(export / "slowest_calls.csv")
    expected = [row[0] for row in local_lumen.sql(
        f"SELECT span_id FROM spans WHERE {CALL_FILTER} AND duration_ms IS NOT NULL ORDER BY duration_ms DESC, span_id LIMIT 20"
    )]
    assert [r["span_id"] for r in slowest] == expected
    assert all(r["prompt"] for r in slowest), "the slowest calls show their prompts"
    # The prompt shown is the call's last user message.
    first = local_lumen.sql(f"SELECT input_messages FROM spans WHERE span_id = '{expected[0]}'")[0][0]
    last_user = [m for m in json.loads(first) if m["role"] == "user"][-1]
    text = " ".join(" ".join(p["content"] for p in last_user["parts"] if p["type"] == "text").split())
    assert text.startswith(slowest[0]["prompt"].rstrip("\u2026"))


def test_notebook_on_s3_with_a_time_window(s3_lumen, s3_env, tmp_path):
    export = tmp_path / "export"
    nb = execute(tmp_path, {
        "LUMEN_DATA": s3_lumen.location,
        "LUMEN_S3_ENDPOINT": s3_lumen.s3_endpoint,
        "LUMEN_DAYS": "2",
        "LUMEN_EXPORT_DIR": str(export),
    })
    check_ran_clean(nb)
    newest = s3_lumen.sql("SELECT arrow_cast(max(start_time), 'Int64') FROM spans")[0][0]
    since = newest - 2 * 86_400 * 10**9 + 1
    calls = s3_lumen.sql(f"SELECT count(*) FROM spans WHERE {CALL_FILTER} AND start_time >= to_timestamp_nanos({since})")[0][0]
    (overview,) = read_csv(export / "overview.csv")
    assert int(overview["calls"]) == calls
    assert len({r["day"] for r in read_csv(export / "daily_by_provider.csv")}) in (2, 3)
