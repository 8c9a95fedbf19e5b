"""The web UI that `lumen serve` serves at `/`, driven in headless Chromium (Playwright) against a real server
seeded with `lumen-bench gen` data that ends now. For every page: it renders, and what it shows matches the
API answer the test fetches itself. Dashboards made in the UI survive a restart; an alert made in the UI
fires to a local webhook receiver and resolves, and the UI shows both.

Pages are opened with an absolute custom range (from/to in the hash) so the numbers cannot drift while the
test compares them. Screenshots go to $LUMEN_UI_SCREENSHOTS (default target/ui-screenshots); with
LUMEN_UI_UPDATE_SCREENSHOTS=1 the main ones are also copied to ui/screenshots/ for the README (off by default,
so a test run leaves the git tree clean). Every page fails its test on any uncaught JavaScript error.
"""

import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from lumen_harness import LumenServer, wait_for
from ui_harness import CHROMIUM, CHROMIUM_ARGS, UI_DIR, BENCH_BIN, WebhookReceiver, generate_spans, ingest_lines, start_proxy

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - reported as a skip below
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is not installed (pip install -r tests/requirements.txt)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("LUMEN_UI_SCREENSHOTS", ROOT / "target" / "ui-screenshots"))
README_SHOTS = {"overview", "explore", "trace-detail", "service-map", "dashboard-default"}
UPDATE_README_SHOTS = os.environ.get("LUMEN_UI_UPDATE_SCREENSHOTS") == "1"
N_SPANS = int(os.environ.get("LUMEN_UI_SPANS", "8000"))
WAIT_MS = 30_000


# LUMEN_UI_FROM_DISK=1: the browser talks to a small proxy that serves ui/ from disk and forwards the API, to
# work on the UI without rebuilding the binary. Default: the UI embedded in `lumen serve`.
FROM_DISK = os.environ.get("LUMEN_UI_FROM_DISK") == "1"
_proxies = {}


def ui_base(server):
    if not FROM_DISK:
        return server.url
    if server.port not in _proxies:
        from lumen_harness import free_port
        port = free_port()
        _proxies[server.port] = (start_proxy(port, server.url), f"http://127.0.0.1:{port}")
    return _proxies[server.port][1]


def stop_proxy(server):
    entry = _proxies.pop(server.port, None)
    if entry:
        entry[0].shutdown()
        entry[0].server_close()


@pytest.fixture(scope="module", autouse=True)
def _shut_down_proxies():
    """Proxies made for per-test servers are stopped when the module is done."""
    yield
    for port in list(_proxies):
        proxy = _proxies.pop(port)[0]
        proxy.shutdown()
        proxy.server_close()


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One server with N_SPANS generated spans ending a minute ago, and an absolute window around them."""
    assert BENCH_BIN.exists(), f"{BENCH_BIN} is missing: run cargo build --workspace first"
    tmp = tmp_path_factory.mktemp("ui")
    server = LumenServer(tmp / "data", args=["--capture", "full"], log_dir=tmp)
    try:
        server.start()
        now = datetime.now(timezone.utc)
        lines = generate_spans(tmp / "spans.ndjson", N_SPANS, seed=7)
        ingest_lines(server.url, lines)
        server.window = {"from": iso(now - timedelta(hours=26)), "to": iso(now + timedelta(minutes=30))}
        yield server
    finally:
        stop_proxy(server)
        server.kill()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    profile = tempfile.mkdtemp(prefix="lumen-ui-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1440, "height": 900}, accept_downloads=False,
        )
        ctx.set_default_timeout(WAIT_MS)
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


def new_page(browser_context):
    """A page that records uncaught JavaScript errors (`pg.js_errors`) and accepts dialogs."""
    pg = browser_context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors
    pg.on("dialog", lambda d: d.accept())
    return pg


def close_page(pg):
    """Close `pg` and fail on any JavaScript error it saw."""
    if not pg.is_closed():
        pg.close()
    assert not pg.js_errors, f"JavaScript errors on the page: {pg.js_errors}"


@pytest.fixture
def page(browser_context):
    pg = new_page(browser_context)
    yield pg
    close_page(pg)


def hash_url(server, route, **params):
    """`http://host/#/route?from=..&to=..&k=v` with the server's fixed window unless overridden."""
    q = dict(getattr(server, "window", {}))
    q.update({k: v for k, v in params.items() if v is not None})
    qs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in q.items())
    return f"{ui_base(server)}/#{route}" + (f"?{qs}" if qs else "")


def api(server, path, **params):
    q = dict(getattr(server, "window", {}))
    q.update(params)
    r = requests.get(server.url + path, params=q, timeout=60)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def shot(pg, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    if UPDATE_README_SHOTS and name in README_SHOTS:
        (UI_DIR / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, UI_DIR / "screenshots" / f"{name}.png")


def no_errors_shown(pg):
    banners = pg.locator("[data-testid=error-banner]")
    assert banners.count() == 0, "error shown: " + " | ".join(banners.all_inner_texts())


def settle(pg):
    """Until no loading placeholder is left on the page."""
    pg.wait_for_function("() => document.querySelectorAll('[data-testid=loading]').length === 0", timeout=WAIT_MS)
    # charts draw on the next frame, once they know their width
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def value_of(pg, testid):
    return pg.locator(f"[data-testid={testid}]").first.get_attribute("data-value")


# ----------------------------------------------------------------------------------------------- shell
def test_shell_serves_index_and_assets(seeded):
    base = ui_base(seeded)
    r = requests.get(base + "/", timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers.get("content-type", "")
    assert "/ui/js/app.js" in r.text and "/ui/style.css" in r.text
    for asset in ["/ui/style.css", "/ui/js/app.js", "/ui/js/charts.js", "/ui/js/pages/traces.js"]:
        a = requests.get(base + asset, timeout=10)
        assert a.status_code == 200, asset
    # the server itself (not the dev proxy) forbids framing of every UI file
    for path in ["/", "/ui/index.html"]:
        r = requests.get(seeded.url + path, timeout=10)
        assert r.status_code == 200, path
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, f"{path}: Content-Security-Policy {csp!r}"
    js = requests.get(base + "/ui/js/app.js", timeout=10)
    assert "javascript" in js.headers.get("content-type", ""), js.headers.get("content-type")
    # nothing from the internet: no absolute http(s) URLs in markup, styles or scripts that the browser would load
    for f in [UI_DIR / "index.html", UI_DIR / "style.css", *sorted((UI_DIR / "js").rglob("*.js"))]:
        text = f.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']https?://|@import\s+url\(\s*["']?https?://|import\s+[^;]*from\s+["']https?://""", text), f


# ----------------------------------------------------------------------------------------------- overview
def test_overview_tiles_match_timeseries_total(seeded, page):
    page.goto(hash_url(seeded, "/"))
    page.wait_for_selector("[data-testid=tile-calls]")
    settle(page)
    no_errors_shown(page)
    total = api(seeded, "/v1/explore/timeseries")["total"]
    assert int(value_of(page, "tile-calls")) == total["calls"]
    assert float(value_of(page, "tile-cost")) == pytest.approx(total["cost_usd"], rel=1e-9)
    assert int(value_of(page, "tile-input-tokens")) == total["input_tokens"]
    assert int(value_of(page, "tile-output-tokens")) == total["output_tokens"]
    assert float(value_of(page, "tile-p90")) == pytest.approx(total["p90_ms"], rel=1e-9)
    assert page.locator("[data-testid=tile-calls] .tile-value").inner_text().replace(",", "") == str(total["calls"])
    for chart in ["chart-calls", "chart-error-rate", "chart-latency", "chart-ttft", "chart-tokens", "chart-cost"]:
        assert page.locator(f"[data-testid={chart}] svg path.line").count() >= 1, chart
    # hover shows a tooltip with the values of the bucket under the cursor
    box = page.locator("[data-testid=chart-calls] svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("[data-testid=chart-calls] .chart-tip:not([hidden])")
    # top models: as many rows as groups (up to 10), the first has the most calls
    groups = api(seeded, "/v1/explore/latency", by="model")["groups"]
    rows = page.locator("[data-testid=top-model-table] tbody tr")
    assert rows.count() == min(10, len(groups))
    top = max(groups, key=lambda g: g["calls"])
    assert f"{top['calls']:,}" in rows.first.inner_text()  # sorted by calls, busiest first
    shot(page, "overview")


def test_filters_time_range_and_links(seeded, page):
    page.goto(hash_url(seeded, "/"))
    page.wait_for_selector("[data-testid=tile-calls]")
    model = api(seeded, "/v1/models")["models"][0]["request_model"]
    page.click("[data-testid=filter-add]")
    page.select_option("[data-testid=filter-dim]", "model")
    page.fill("[data-testid=filter-value]", model)
    page.click("[data-testid=filter-apply]")
    page.wait_for_selector("[data-testid=filter-chip-model]")
    assert "model=" + quote(model, safe="") in page.url
    page.wait_for_function(
        "v => document.querySelector('[data-testid=tile-calls]')?.dataset.value === String(v)",
        arg=api(seeded, "/v1/explore/timeseries", model=model)["total"]["calls"])
    # the filter travels with navigation
    page.click("[data-testid=nav-traces]")
    page.wait_for_selector("[data-testid=trace-row]")
    assert page.locator("[data-testid=filter-chip-model]").count() == 1
    first = page.locator("[data-testid=trace-row]").first.inner_text()
    assert model in first
    page.click("[data-testid=filter-remove-model]")
    page.wait_for_function("() => !location.hash.includes('model=')")
    # preset ranges write range= and drop the custom window
    page.select_option("[data-testid=time-range]", "1h")
    page.wait_for_function("() => location.hash.includes('range=1h') && !location.hash.includes('from=')")
    page.select_option("[data-testid=refresh-select]", "30s")
    page.wait_for_function("() => location.hash.includes('refresh=30s')")
    # a custom window from the picker lands in the hash as from/to and drives the API calls
    page.select_option("[data-testid=time-range]", "custom")
    page.wait_for_selector("[data-testid=custom-range]:not([hidden])")
    page.fill("[data-testid=custom-from]", "2020-01-01T00:00")
    page.fill("[data-testid=custom-to]", "2020-01-02T00:00")
    page.click("[data-testid=custom-apply]")
    page.wait_for_function("() => location.hash.includes('from=2020-01-0') && location.hash.includes('to=2020-01-0')")
    page.click("[data-testid=nav-overview]")
    page.wait_for_function("() => location.hash.startsWith('#/?') || location.hash.startsWith('#/&')")
    assert "refresh=30s" in page.url  # auto-refresh travels with links like the range and filters
    page.wait_for_selector("[data-testid=tile-calls][data-value='0']")
    page.wait_for_selector("[data-testid=empty-state]")


# ----------------------------------------------------------------------------------------------- models
def test_models_inventory_matches_api(seeded, page):
    page.goto(hash_url(seeded, "/models"))
    page.wait_for_selector("[data-testid=model-row]")
    settle(page)
    no_errors_shown(page)
    models = api(seeded, "/v1/models")["models"]
    rows = page.locator("[data-testid=model-row]")
    assert rows.count() == len(models)
    m = models[len(models) // 2]
    sel = (f"[data-testid=model-row][data-model='{m['request_model']}'][data-provider='{m['provider']}']"
           f"[data-response-model='{m['response_model'] or ''}']")
    assert int(page.locator(sel).get_attribute("data-calls")) == m["calls"]
    assert page.locator("[data-testid=badge-new]").count() == sum(1 for x in models if x["new"])
    versions = sum(1 for x in models if x["response_model"] and x["response_model"] != x["request_model"])
    assert page.locator("[data-testid=badge-version]").count() == versions
    lat = api(seeded, "/v1/explore/latency", by="model")["groups"]
    assert page.locator("[data-testid=models-latency-table] tbody tr").count() == len(lat)
    assert page.locator("[data-testid=models-cost-bars] [data-testid=bar]").count() >= 1
    shot(page, "models")


# ----------------------------------------------------------------------------------------------- explore
def test_explore_groups_charts_and_drill_down(seeded, page):
    page.goto(hash_url(seeded, "/explore", by="service", metric="p90_ms"))
    page.wait_for_selector("[data-testid=group-row]")
    settle(page)
    no_errors_shown(page)
    groups = api(seeded, "/v1/explore/latency", by="service")["groups"]
    rows = page.locator("[data-testid=group-row]")
    assert rows.count() == len(groups)
    g = groups[0]
    assert int(page.locator(f"[data-testid=group-row][data-group='{g['group']}']").get_attribute("data-calls")) == g["calls"]
    ts = api(seeded, "/v1/explore/timeseries", split="service", top="5")
    assert page.locator("[data-testid=explore-line] svg path.line").count() == len(ts["series"])
    hist = api(seeded, "/v1/explore/histogram", metric="duration_ms", split="service", top="5")
    shown = sum(int(b.get_attribute("data-count")) for b in page.locator("[data-testid=explore-histogram] [data-testid=hist-bucket]").all())
    assert shown == sum(sum(gr["counts"]) for gr in hist["groups"])
    shot(page, "explore")
    # other chart kinds render
    page.click("[data-testid=explore-chart] button[data-value=bar]")
    page.wait_for_selector("[data-testid=explore-bars] [data-testid=bar]")
    page.click("[data-testid=explore-chart] button[data-value=histogram]")
    page.wait_for_selector("[data-testid=explore-hist-main] [data-testid=hist-bucket]")
    # a group drills down to its calls
    page.locator(f"[data-testid=group-row][data-group='{g['group']}']").click()
    page.wait_for_selector("[data-testid=filter-chip-service]")
    page.wait_for_selector("[data-testid=trace-row]")
    spans = api(seeded, "/v1/spans", service=g["group"], sort="newest", limit="50")["spans"]
    assert page.locator("[data-testid=trace-row]").first.get_attribute("data-span-id") == spans[0]["span_id"]


# ----------------------------------------------------------------------------------------------- SLA
def test_sla_matches_api(seeded, page):
    page.goto(hash_url(seeded, "/sla"))
    page.wait_for_selector("[data-testid=sla-over]")
    page.fill("[data-testid=sla-threshold]", "2500")
    page.click("[data-testid=sla-apply]")
    page.wait_for_function("() => location.hash.includes('threshold_ms=2500')")
    sla = api(seeded, "/v1/explore/sla", threshold_ms="2500")
    page.wait_for_function("v => document.querySelector('[data-testid=sla-over]')?.dataset.value === String(v)", arg=sla["over"])
    settle(page)
    no_errors_shown(page)
    assert int(value_of(page, "sla-total")) == sla["calls"]
    assert float(value_of(page, "sla-share")) == pytest.approx(sla["share"])
    for key, rows in sla["breakdown"].items():
        if rows:
            table = page.locator(f"[data-testid=sla-breakdown-{key}]")
            assert int(table.get_attribute("data-rows")) == len(rows), key
            top = max(rows, key=lambda r: r["share_of_breaches"])
            v = top["value"]
            shown = "(none)" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            assert shown in table.locator("tbody tr").first.inner_text(), key
    # long breakdowns show their busiest rows first and the rest on demand
    big = max(sla["breakdown"], key=lambda k: len(sla["breakdown"][k] or []))
    if len(sla["breakdown"][big]) > 12:
        page.locator(f"[data-testid=sla-card-{big}] [data-testid=table-show-all]").click()
        assert page.locator(f"[data-testid=sla-breakdown-{big}] tbody tr").count() == len(sla["breakdown"][big])
    assert page.locator("[data-testid=sla-slow-row]").count() == len(sla["slowest"])
    shot(page, "sla")
    slowest = sla["slowest"][0]
    page.locator("[data-testid=sla-slow-link]").first.click()
    page.wait_for_selector("[data-testid=trace-detail]")
    assert page.locator("[data-testid=trace-detail]").get_attribute("data-span-id") == slowest["span_id"]


# ----------------------------------------------------------------------------------------------- traces
def test_traces_list_tabs_search_and_more(seeded, page):
    page.goto(hash_url(seeded, "/traces"))
    page.wait_for_selector("[data-testid=trace-row]")
    no_errors_shown(page)
    newest = api(seeded, "/v1/spans", sort="newest", limit="50")
    rows = page.locator("[data-testid=trace-row]")
    assert rows.count() == len(newest["spans"])
    assert rows.first.get_attribute("data-span-id") == newest["spans"][0]["span_id"]
    shot(page, "traces")
    page.click("[data-testid=traces-more]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=trace-row]').length > 50")
    second = api(seeded, "/v1/spans", sort="newest", limit="50", cursor=newest["next_cursor"])["spans"]
    assert rows.nth(50).get_attribute("data-span-id") == second[0]["span_id"]

    page.click("[data-testid=tab-slowest]")
    slowest = api(seeded, "/v1/spans", sort="slowest", limit="50")["spans"][0]
    page.wait_for_function("id => document.querySelector('[data-testid=trace-row]')?.dataset.spanId === id", arg=slowest["span_id"])
    page.click("[data-testid=tab-errors]")
    err = api(seeded, "/v1/spans", sort="newest", errors="true", limit="50")["spans"][0]
    page.wait_for_function("id => document.querySelector('[data-testid=trace-row]')?.dataset.spanId === id", arg=err["span_id"])
    assert page.locator("[data-testid=trace-row].row-error").count() == page.locator("[data-testid=trace-row]").count()

    page.click("[data-testid=tab-newest]")
    page.wait_for_function("() => !location.hash.includes('tab=')")
    target = newest["spans"][3]
    page.fill("[data-testid=traces-search]", target["span_id"])
    page.press("[data-testid=traces-search]", "Enter")
    page.wait_for_function("id => { const r = document.querySelectorAll('[data-testid=trace-row]'); return r.length >= 1 && r[0].dataset.spanId === id; }", arg=target["span_id"])
    found = api(seeded, "/v1/spans", sort="newest", search=target["span_id"], limit="50")["spans"]
    assert page.locator("[data-testid=trace-row]").count() == len(found)
    # free text from a prompt finds calls too: a word of a seeded prompt finds the span it came from
    target, word = _span_and_prompt_word(seeded)
    hits = api(seeded, "/v1/spans", sort="newest", search=word, limit="50")["spans"]
    assert target["span_id"] in [h["span_id"] for h in hits], f"the API search for {word!r} misses {target['span_id']}"
    page.fill("[data-testid=traces-search]", word)
    page.press("[data-testid=traces-search]", "Enter")
    page.wait_for_function("id => document.querySelector('[data-testid=trace-row]')?.dataset.spanId === id", arg=hits[0]["span_id"])
    page.wait_for_selector(f"[data-testid=trace-row][data-span-id='{target['span_id']}']")
    assert page.locator("[data-testid=trace-row]").count() == len(hits)
    no_errors_shown(page)


def _span_and_prompt_word(server):
    """One of the newest spans with a text prompt, and a plain word (letters only) from that prompt."""
    for s in api(server, "/v1/spans", sort="newest", limit="20")["spans"]:
        full = requests.get(f"{server.url}/v1/spans/{s['span_id']}", timeout=30).json()
        full = full.get("span", full)
        text = _first_text(full["input_messages"]) if full.get("input_messages") else None
        words = sorted({w for w in re.findall(r"[A-Za-z]{6,}", text or "")}, key=len, reverse=True)
        if words:
            return full, words[0]
    pytest.fail("no span with a text prompt among the newest")


def _first_text(messages):
    msgs = json.loads(messages) if isinstance(messages, str) else messages
    for m in msgs:
        for p in m.get("parts", []):
            if p.get("type") == "text" and p.get("content"):
                return p["content"]
    return None


def test_trace_detail_shows_conversation_and_waterfall(seeded, page):
    first = api(seeded, "/v1/spans", sort="newest", limit="20")["spans"]
    page.goto(hash_url(seeded, "/traces"))
    page.wait_for_selector("[data-testid=trace-row]")
    # the newest span that has content
    target = None
    for s in first:
        full = requests.get(f"{seeded.url}/v1/spans/{s['span_id']}", timeout=30).json()
        full = full.get("span", full)
        if full.get("input_messages"):
            target = full
            break
    assert target, "no span with content among the newest"
    page.locator(f"[data-testid=trace-row][data-span-id='{target['span_id']}']").click()
    page.wait_for_selector("[data-testid=trace-detail]")
    assert f"#/traces/{target['trace_id']}" in page.url and f"span={target['span_id']}" in page.url
    settle(page)
    no_errors_shown(page)
    conv = page.locator("[data-testid=conversation]")
    prompt = _first_text(target["input_messages"])
    assert prompt and prompt[:80] in conv.inner_text()
    assert page.locator("[data-testid=message][data-role=user]").count() >= 1
    if target.get("system_instructions"):
        assert page.locator("[data-testid=message][data-role=system]").count() == 1
    trace = api(seeded, f"/v1/traces/{target['trace_id']}")
    assert page.locator("[data-testid=waterfall-row]").count() == len(trace["spans"])
    attrs = page.locator("[data-testid=span-attributes]").inner_text()
    assert target["span_id"] in attrs
    assert int(value_of(page, "span-input-tokens")) == target["input_tokens"]
    for flag in target.get("capture_flags") or []:
        assert flag in page.locator("[data-testid=span-badges]").inner_text()
    shot(page, "trace-detail")
    # an errored call is highlighted
    err = api(seeded, "/v1/spans", errors="true", limit="1")["spans"][0]
    page.goto(hash_url(seeded, f"/traces/{err['trace_id']}", span=err["span_id"]))
    page.wait_for_selector("[data-testid=span-error]")
    assert (err.get("error_type") or str(err.get("http_status"))) in page.locator("[data-testid=span-error]").inner_text()


def test_trace_detail_renders_tool_calls_errors_and_raw_content(lumen, page):
    """Hand-made trace: a tool call, its result, and a failed call whose prompt is plain text (not JSON)."""
    server = lumen(args=["--capture", "full"])
    now = time.time_ns()
    tid = "uitrace0000000000000000000000001"
    spans = [
        {"span_id": "uispan-a", "trace_id": tid, "start_time": now - 9_000_000_000, "duration_ms": 1200.0, "ttft_ms": 300.0,
         "service_name": "weather-agent", "provider": "openai", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
         "operation": "chat", "http_status": 200, "streaming": True, "input_tokens": 120, "output_tokens": 30,
         "system_instructions": [{"type": "text", "content": "You are a weather bot."}],
         "input_messages": [{"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]}],
         "output_messages": [{"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}], "finish_reason": "tool_calls"}],
         "tool_definitions": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]},
        {"span_id": "uispan-b", "trace_id": tid, "parent_span_id": "uispan-a", "start_time": now - 7_500_000_000, "duration_ms": 800.0,
         "service_name": "weather-agent", "provider": "openai", "request_model": "gpt-4o", "operation": "chat", "http_status": 200,
         "input_tokens": 160, "output_tokens": 12,
         "input_messages": [
             {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
             {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
             {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 21C"}]}],
         "output_messages": [{"role": "assistant", "parts": [{"type": "text", "content": "It is sunny in Paris."}]}]},
        {"span_id": "uispan-c", "trace_id": tid, "parent_span_id": "uispan-a", "start_time": now - 6_000_000_000, "duration_ms": 150.0,
         "service_name": "weather-agent", "provider": "openai", "request_model": "gpt-4o", "operation": "chat", "http_status": 429,
         "error_type": "rate_limit_error", "error_message": "Rate limit reached for gpt-4o", "capture_flags": ["truncated"],
         "input_messages": "plain text prompt, not JSON"},
    ]
    ingest_lines(server.url, [json.dumps(s) for s in spans])
    base = ui_base(server)
    page.goto(f"{base}/#/traces/{tid}?span=uispan-a")
    page.wait_for_selector("[data-testid=trace-detail][data-span-id=uispan-a]")
    assert page.locator("[data-testid=waterfall-row]").count() == 3
    conv = page.locator("[data-testid=conversation]")
    assert page.locator("[data-testid=message][data-role=system]").inner_text().count("You are a weather bot.") == 1
    assert "What is the weather in Paris?" in conv.inner_text()
    tool = conv.locator("[data-part=tool_call]")
    assert tool.count() == 1 and "get_weather" in tool.inner_text() and "Paris" in tool.inner_text()
    assert "answered by gpt-4o-2024-08-06" in page.locator("[data-testid=span-badges]").inner_text()
    page.locator("[data-testid=waterfall-row][data-span-id=uispan-b]").click()
    page.wait_for_selector("[data-testid=trace-detail][data-span-id=uispan-b]")
    assert "span=uispan-b" in page.url
    conv = page.locator("[data-testid=conversation]")
    assert "sunny, 21C" in conv.locator("[data-part=tool_call_response]").inner_text()
    assert "It is sunny in Paris." in page.locator("[data-testid=message][data-role=assistant]").last.inner_text()
    page.locator("[data-testid=waterfall-row][data-span-id=uispan-c]").click()
    page.wait_for_selector("[data-testid=trace-detail][data-span-id=uispan-c]")
    err = page.locator("[data-testid=span-error]").inner_text()
    assert "rate_limit_error" in err and "429" in err and "Rate limit reached for gpt-4o" in err
    assert "plain text prompt, not JSON" in page.locator("[data-testid=conversation]").inner_text()
    assert "truncated" in page.locator("[data-testid=span-badges]").inner_text()
    assert page.locator("[data-testid=waterfall-row][data-span-id=uispan-c] .wf-bar.err").count() == 1
    shot(page, "trace-tools")


def test_api_errors_are_shown(seeded, page):
    page.goto(hash_url(seeded, "/traces/no-such-trace-0000"))
    page.wait_for_selector("[data-testid=error-banner]")
    assert "404" in page.locator("[data-testid=error-banner]").inner_text()
    # a malformed %-escape in the hash is taken as raw text, not a blank page (nor a JS error)
    page.goto(ui_base(seeded) + "/#/traces/bad%E0%A4%A")
    page.wait_for_selector("[data-testid=error-banner]")
    assert re.search(r"HTTP 4\d\d", page.locator("[data-testid=error-banner]").inner_text())  # the id is refused, not the page
    assert page.locator("[data-testid=nav-traces].active").count() == 1


def test_leaving_a_page_cancels_its_requests(seeded, page):
    """Requests of a page the user left are aborted (one AbortController per render) and show no error."""
    held, failed = [], []
    page.on("requestfailed", lambda r: failed.append(r.url) if "/v1/explore/" in r.url else None)
    page.route(lambda url: "/v1/explore/" in url, lambda route: held.append(route))
    page.goto(hash_url(seeded, "/"))
    wait_for(lambda: len(held) >= 2 or page.wait_for_timeout(100), timeout=20, what="the overview's explore requests")
    page.unroute(lambda url: "/v1/explore/" in url)
    page.click("[data-testid=nav-traces]")
    page.wait_for_selector("[data-testid=trace-row]")
    wait_for(lambda: len(failed) >= 2 or page.wait_for_timeout(100), timeout=20, what="the overview's requests to be aborted")
    for route in held:  # answer whatever is still pending: nothing may reach the traces page
        try:
            route.continue_()
        except Exception:  # noqa: BLE001 - the browser already cancelled it
            pass
    page.wait_for_timeout(300)
    no_errors_shown(page)
    assert page.locator("[data-testid=tile-calls]").count() == 0


def test_busy_429_is_retried(seeded, page):
    """A 429 (query slots busy, Retry-After: 1) on an explore call is retried: the page shows the real number."""
    seen, busy = [], []

    def handle(route):
        seen.append(route.request.url)
        if not busy:
            busy.append(route.request.url)
            route.fulfill(status=429, headers={"Retry-After": "1", "Content-Type": "application/json"},
                          body=json.dumps({"error": "all query slots are busy, retry shortly"}))
        else:
            route.continue_()

    page.route(lambda url: "/v1/explore/timeseries" in url, handle)
    page.goto(hash_url(seeded, "/"))
    total = api(seeded, "/v1/explore/timeseries")["total"]
    page.wait_for_selector(f"[data-testid=tile-calls][data-value='{total['calls']}']")
    settle(page)
    no_errors_shown(page)
    assert len(busy) == 1, "the 429 was never served"
    assert seen.count(busy[0]) >= 2, f"the busy request was not retried: {seen}"


# ----------------------------------------------------------------------------------------------- hostile content
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = '"><script>window.__xss=2</script>'


def test_hostile_content_is_shown_as_text(lumen, page):
    """Span fields that look like markup are text everywhere: no element is injected, no script runs."""
    server = lumen(args=["--capture", "full"])
    now = time.time_ns()
    tid = "uixsstrace000000000000000000000a"
    common = {"trace_id": tid, "provider": "openai", "operation": "chat", "input_tokens": 10, "output_tokens": 5}
    spans = [
        {**common, "span_id": "uixss-a", "start_time": now - 20_000_000_000, "duration_ms": 3000.0, "http_status": 200,
         "request_model": "gpt-" + XSS_IMG, "response_model": "gpt-" + XSS_SCRIPT, "service_name": "svc" + XSS_SCRIPT,
         "server_address": "api" + XSS_IMG,
         "system_instructions": [{"type": "text", "content": "sys " + XSS_SCRIPT}],
         "input_messages": [{"role": "user", "parts": [{"type": "text", "content": "hi " + XSS_IMG}]}],
         "output_messages": [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
             {"type": "text", "content": "out " + XSS_SCRIPT},
             {"type": "tool_call", "id": "call_x", "name": "tool" + XSS_IMG, "arguments": {XSS_IMG: XSS_SCRIPT}}]}],
         "attributes": {XSS_IMG: XSS_SCRIPT, "note" + XSS_SCRIPT: XSS_IMG}},
        {**common, "span_id": "uixss-b", "parent_span_id": "uixss-a", "start_time": now - 15_000_000_000, "duration_ms": 200.0,
         "http_status": 500, "request_model": "m" + XSS_SCRIPT, "service_name": "svc" + XSS_IMG,
         "error_type": "err" + XSS_IMG, "error_message": "boom " + XSS_IMG + XSS_SCRIPT,
         "input_messages": [{"role": "user", "parts": [{"type": "text", "content": XSS_SCRIPT}]},
                            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c2", "name": XSS_SCRIPT, "arguments": XSS_IMG}]},
                            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c2", "response": XSS_IMG}]}],
         "attributes": {"k": XSS_IMG}},
    ]
    ingest_lines(server.url, [json.dumps(x) for x in spans])
    base = ui_base(server)
    pages = [("/", ["tile-calls"]), ("/models", ["model-row"]), ("/traces", ["trace-row"]),
             (f"/traces/{tid}?span=uixss-a", ["trace-detail", "conversation"]), (f"/traces/{tid}?span=uixss-b", ["span-error"]),
             ("/map?edges=all", ["map-edge"]), ("/sla?threshold_ms=1000", ["sla-over"]),
             ("/explore?by=model", ["group-row"]), ("/explore?by=service&chart=bar", ["group-row"])]
    for route, hooks in pages:
        page.goto(f"{base}/#{route}")
        for hook in hooks:
            page.wait_for_selector(f"[data-testid={hook}]")
        settle(page)
        no_errors_shown(page)
        found = page.evaluate("""() => ({
            img: document.querySelectorAll('img[src="x"]').length,
            onerror: document.querySelectorAll('[onerror]').length,
            script: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__xss')).length,
            xss: typeof window.__xss })""")
        assert found == {"img": 0, "onerror": 0, "script": 0, "xss": "undefined"}, (route, found)
        # ...and the hostile strings are there, as text
        assert "<img src=x" in page.inner_text("#page") or "<script>" in page.inner_text("#page") \
            or route.startswith("/map"), route
    # the hostile values as filters (chips) are text too
    page.goto(hash_url(server, "/traces", model="gpt-" + XSS_IMG, service="svc" + XSS_SCRIPT))
    page.wait_for_selector("[data-testid=filter-chip-model]")
    assert XSS_IMG in page.locator("[data-testid=filter-chip-model]").inner_text()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("img[src=x]").count() == 0
    shot(page, "hostile-content")


# ----------------------------------------------------------------------------------------------- service map
def test_service_map_edges_match_api(seeded, page):
    page.goto(hash_url(seeded, "/map", edges="all"))
    page.wait_for_selector("[data-testid=map-edge]")
    settle(page)
    no_errors_shown(page)
    d = api(seeded, "/v1/services")
    assert page.locator("[data-testid=map-edge]").count() == len(d["edges"])
    e = max(d["edges"], key=lambda x: x["calls"])
    edge = page.locator(f"[data-testid=map-edge][data-source='{e['source']}'][data-target='{e['target']}']")
    assert int(edge.get_attribute("data-calls")) == e["calls"]
    page.goto(hash_url(seeded, "/map"))
    page.wait_for_selector("[data-testid=map-edge]")
    settle(page)
    shot(page, "service-map")
    # labels may overlap at the busiest nodes: click the edge element itself
    page.locator(f"[data-testid=map-edge][data-source='{e['source']}'][data-target='{e['target']}']").dispatch_event("click")
    page.wait_for_selector("[data-testid=filter-chip-service]")
    assert e["source"] in page.locator("[data-testid=filter-chip-service]").inner_text()
    page.wait_for_selector("[data-testid=trace-row]")


# ----------------------------------------------------------------------------------------------- dashboards
def test_default_dashboard_renders_every_panel(seeded, page):
    page.goto(hash_url(seeded, "/dashboards"))
    page.wait_for_selector("[data-testid=dash-card][data-id=default]")
    shot(page, "dashboards")
    page.click("[data-testid=dash-card][data-id=default]")
    page.wait_for_selector("[data-testid=dashboard] [data-testid=panel]")
    settle(page)
    no_errors_shown(page)
    d = api(seeded, "/v1/dashboards/default")
    assert page.locator("[data-testid=dashboard] [data-testid=panel]").count() == len(d["panels"])
    for p in d["panels"]:
        panel = page.locator(f"[data-testid=panel][data-panel-id='{p['id']}']")
        assert panel.locator("svg, table, [data-testid=panel-stat]").count() >= 1, p["title"]
    shot(page, "dashboard-default")


def test_dashboard_made_in_ui_survives_restart(lumen, tmp_path, browser_context):
    server = lumen(args=["--capture", "full"])
    ingest_lines(server.url, generate_spans(tmp_path / "spans.ndjson", 500, seed=3))
    pg = new_page(browser_context)
    try:
        pg.goto(ui_base(server) + "/#/dashboards")
        pg.click("[data-testid=dash-new]")
        pg.wait_for_selector("[data-testid=dashboard-editor]")
        pg.fill("[data-testid=dash-title-input]", "UI test board")
        pg.fill("[data-testid=dash-description-input]", "made by clicking")
        first = pg.locator("[data-testid=panel]").first
        first.locator("[data-testid=panel-title-input]").fill("Calls by model")
        first.locator("[data-testid=panel-params]").fill("split=model & top=3")
        pg.click("[data-testid=dash-add-panel]")
        second = pg.locator("[data-testid=panel]").nth(1)
        second.locator("[data-testid=panel-kind]").select_option("sql")
        second = pg.locator("[data-testid=panel]").nth(1)
        second.locator("[data-testid=panel-title-input]").fill("Calls per provider")
        second.locator("[data-testid=panel-sql]").fill(
            "SELECT provider, count(*) AS calls FROM spans WHERE start_time >= $from AND start_time < $to GROUP BY 1 ORDER BY 2 DESC")
        second.locator("[data-testid=panel-chart]").select_option("bar")
        second.locator("[data-testid=panel-field]").fill("calls")
        second.locator("[data-testid=panel-width]").select_option("2")
        pg.wait_for_selector("[data-testid=panel] >> nth=1 >> [data-testid=bar]")
        pg.click("[data-testid=dash-save]")
        pg.wait_for_selector("[data-testid=dashboard] [data-testid=dash-title]")
        dash_id = pg.locator("[data-testid=dashboard]").get_attribute("data-id")
        assert re.search(r"#/dashboards/" + re.escape(dash_id), pg.url)

        server.restart()
        pg.reload()
        pg.wait_for_selector("[data-testid=dashboard] [data-testid=panel]")
        settle(pg)
        assert pg.locator("[data-testid=dash-title]").inner_text() == "UI test board"
        titles = [t.strip() for t in pg.locator("[data-testid=dashboard] [data-testid=panel] .card-head h3").all_inner_texts()]
        assert titles == ["Calls by model", "Calls per provider"]
        assert pg.locator("[data-testid=dashboard] [data-testid=panel]").nth(1).locator("[data-testid=bar]").count() >= 1
        saved = requests.get(f"{server.url}/v1/dashboards/{dash_id}", timeout=10).json()
        assert saved["panels"][0]["params"] == {"split": "model", "top": "3"}
        assert saved["panels"][1]["kind"] == "sql" and saved["panels"][1]["width"] == 2
        listed = requests.get(f"{server.url}/v1/dashboards", timeout=10).json()["dashboards"]
        assert any(d["id"] == dash_id and d["panels"] == 2 for d in listed)

        # edit: reorder and remove, then delete
        pg.click("[data-testid=dash-edit]")
        pg.locator("[data-testid=panel]").nth(1).locator("[data-testid=panel-up]").click()
        pg.locator("[data-testid=panel]").nth(1).locator("[data-testid=panel-remove]").click()
        pg.click("[data-testid=dash-save]")
        pg.wait_for_selector("[data-testid=dashboard] [data-testid=dash-title]")
        saved = requests.get(f"{server.url}/v1/dashboards/{dash_id}", timeout=10).json()
        assert [p["title"] for p in saved["panels"]] == ["Calls per provider"]
        shot(pg, "dashboard-edited")
        pg.click("[data-testid=dash-delete]")
        pg.wait_for_function("() => location.hash.startsWith('#/dashboards') && !location.hash.includes('" + dash_id + "')")
        assert requests.get(f"{server.url}/v1/dashboards/{dash_id}", timeout=10).status_code == 404
    finally:
        close_page(pg)


# ----------------------------------------------------------------------------------------------- alerts
def test_alert_made_in_ui_fires_and_resolves(lumen, tmp_path, browser_context):
    server = lumen(args=["--capture", "full"])
    receiver = WebhookReceiver()
    pg = new_page(browser_context)
    try:
        pg.goto(ui_base(server) + "/#/alerts")
        pg.click("[data-testid=alert-new]")
        pg.wait_for_selector("[data-testid=alert-template]")
        assert pg.locator("[data-testid=alert-template]").count() >= 2  # SLA breach, error rate
        pg.click("[data-testid=alert-blank]")
        pg.wait_for_selector("[data-testid=alert-form]")
        pg.fill("[data-testid=alert-name-input]", "probe calls")
        # a rate threshold is typed as a percentage: over 100 % is refused before anything is sent
        pg.select_option("[data-testid=alert-metric]", "error_rate")
        assert pg.locator("[data-testid=alert-threshold]").input_value() == "5"  # the blank rule's 0.05
        pg.fill("[data-testid=alert-threshold]", "150")
        pg.click("[data-testid=alert-save]")
        pg.wait_for_selector("[data-testid=alert-threshold-error]:not([hidden])")
        assert requests.get(f"{server.url}/v1/alerts", timeout=10).json()["rules"] == []
        pg.select_option("[data-testid=alert-metric]", "calls")
        pg.fill("[data-testid=alert-filter-service]", "ui-alert-probe")
        pg.select_option("[data-testid=alert-op]", ">")
        pg.fill("[data-testid=alert-threshold]", "0")
        pg.fill("[data-testid=alert-window]", "20s")
        pg.fill("[data-testid=alert-for]", "0s")
        pg.fill("[data-testid=alert-every]", "1s")
        pg.click("[data-testid=alert-notify-add]")
        pg.locator("[data-testid=alert-notify-url]").nth(0).fill(receiver.url("/generic"))
        pg.click("[data-testid=alert-notify-add]")
        pg.locator("[data-testid=alert-notify-url]").nth(1).fill(receiver.url("/slack"))
        pg.locator("[data-testid=alert-notify-format]").nth(1).select_option("slack")
        shot(pg, "alert-form")
        pg.click("[data-testid=alert-save]")
        pg.wait_for_selector("[data-testid=alert-detail]")
        rule_id = pg.locator("[data-testid=alert-detail]").get_attribute("data-id")
        rule = requests.get(f"{server.url}/v1/alerts/{rule_id}", timeout=10).json()
        assert rule["query"]["metric"] == "calls" and rule["query"]["filters"] == {"service": "ui-alert-probe"}
        assert [n["format"] for n in rule["notify"]] == ["generic", "slack"]

        # a few calls from the probe service, just now: the rule fires
        now_ns = time.time_ns()
        probe = [json.dumps({"span_id": f"uiprobe{i:04d}", "trace_id": f"uiprobetrace{i:04d}", "start_time": now_ns - 2_000_000_000 + i,
                             "duration_ms": 100.0, "service_name": "ui-alert-probe", "provider": "openai", "request_model": "gpt-4o-mini",
                             "operation": "chat", "http_status": 200}) for i in range(3)]
        ingest_lines(server.url, probe)

        def state():
            # Evaluate, then wait until the page shows that evaluation (last_evaluated moved) before reading the badge.
            before = pg.locator("[data-testid=alert-last-evaluated]").get_attribute("data-value")
            pg.click("[data-testid=alert-evaluate]")
            pg.wait_for_function(
                "b => { const t = document.querySelector('[data-testid=alert-last-evaluated]'); return t && t.dataset.value !== b; }",
                arg=before)
            return pg.locator("[data-testid=alert-detail] .detail-head [data-testid=alert-state]").get_attribute("data-state")

        wait_for(lambda: state() == "firing", timeout=60, interval=1, what="the alert to fire")
        # ...and resolves once the calls are older than the 20s window
        wait_for(lambda: state() == "ok", timeout=120, interval=2, what="the alert to resolve")
        pg.reload()
        pg.wait_for_selector("[data-testid=alert-history-row]")
        tos = [r.get_attribute("data-to") for r in pg.locator("[data-testid=alert-history-row]").all()]
        assert "firing" in tos and "ok" in tos and tos.index("ok") < tos.index("firing"), tos  # newest first
        assert pg.locator("[data-testid=alert-notification][data-ok=true]").count() >= 2
        shot(pg, "alert-detail")

        wait_for(lambda: {r["path"] for r in receiver.received} >= {"/generic", "/slack"}, timeout=30, what="both webhooks")
        slack = [r["payload"] for r in receiver.received if r["path"] == "/slack"]
        generic = [r["payload"] for r in receiver.received if r["path"] == "/generic"]
        assert all(isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"] for p in slack), slack
        assert all(isinstance(p, dict) for p in generic) and "probe calls" in json.dumps(generic), generic

        # the list shows the rule with its state; disable it from the list
        pg.goto(ui_base(server) + "/#/alerts")
        row = pg.locator(f"[data-testid=alert-row][data-id='{rule_id}']")
        row.wait_for()
        assert row.locator("[data-testid=alert-state]").get_attribute("data-state") == "ok"
        row.locator(".switch").click()
        wait_for(lambda: requests.get(f"{server.url}/v1/alerts/{rule_id}", timeout=10).json()["enabled"] is False, timeout=20, what="rule disabled")
        shot(pg, "alerts")
    finally:
        receiver.stop()
        close_page(pg)


# ----------------------------------------------------------------------------------------------- auth
def test_token_prompt_on_401(lumen, browser_context):
    server = lumen(args=["--query-token", "ui-secret-token", "--ingest-token", "ui-ingest-token"])
    pg = new_page(browser_context)
    try:
        pg.goto(ui_base(server) + "/#/traces")
        pg.wait_for_selector("[data-testid=token-input]")
        # a refresh brings more 401s: the prompt stays as it is, with what the user has typed so far
        pg.fill("[data-testid=token-input]", "ui-secret")
        pg.evaluate("() => { window.__promptNode = document.querySelector('[data-testid=token-input]'); }")
        pg.click("[data-testid=refresh-now]")
        pg.wait_for_selector("[data-testid=error-banner]")
        pg.wait_for_timeout(300)
        assert pg.evaluate("() => document.querySelector('[data-testid=token-input]') === window.__promptNode")
        assert pg.input_value("[data-testid=token-input]") == "ui-secret"
        pg.fill("[data-testid=token-input]", "ui-secret-token")
        pg.click("[data-testid=token-save]")
        pg.wait_for_selector("[data-testid=traces-table]")
        assert pg.locator("[data-testid=error-banner]").count() == 0
        assert pg.evaluate("localStorage.getItem('lumen.token')") == "ui-secret-token"
    finally:
        pg.evaluate("localStorage.removeItem('lumen.token')")
        close_page(pg)
