/**
 * pages/models.js — `#/models`: the model inventory (`GET /v1/models`: provider, request and response model,
 * first / last seen, calls, calling services, a "new" badge for models first seen in the range, a version
 * badge when the response model differs from the requested one), then per-model latency (explore/latency)
 * and tokens and cost (explore/tokens).
 */
import { h, clear } from '../dom.js';
import { dataTable, card, fillAsync, barChart, statTile, errorBox, loading } from '../charts.js';
import { fmtInt, fmtMs, fmtTokens, fmtCost, fmtTime, fmtAgo, fmtNum } from '../format.js';
import { api } from '../api.js';
import { commonParams, navigate, setParams } from '../state.js';

export function render(root, ctx) {
  const tiles = h('div', { class: 'tiles' });
  const inv = h('div', {}, loading());
  const latEl = h('div');
  const tokEl = h('div');
  const costEl = h('div');
  clear(root).append(tiles,
    card('Model inventory', inv, { testid: 'models-inventory', sub: 'every (provider, requested model, answering model) seen in the range' }),
    h('div', { style: { height: '14px' } }),
    h('div', { class: 'grid' },
      card('Latency by model', latEl, { testid: 'models-latency', sub: 'P50 / P90 / P99 of duration, TTFT P50' }),
      card('Cost by model', costEl, { testid: 'models-cost' }),
      card('Tokens by model', tokEl, { testid: 'models-tokens', wide: true })));

  api.get('/v1/models', commonParams()).then((d) => {
    if (!ctx.isCurrent()) return;
    const rows = d.models.map((m, i) => ({ ...m, i, services_n: (m.services || []).length, version: m.response_model && m.response_model !== m.request_model }));
    const providers = new Set(rows.map((r) => r.provider));
    const fresh = rows.filter((r) => r.new).length;
    clear(tiles).append(
      statTile('Models', new Set(rows.map((r) => r.request_model)).size, fmtNum, { testid: 'tile-model-count' }),
      statTile('Versions', rows.length, fmtNum, { testid: 'tile-model-versions', sub: 'provider × request × response' }),
      statTile('Providers', providers.size, fmtNum, { testid: 'tile-providers' }),
      statTile('New in range', fresh, fmtNum, { testid: 'tile-new-models', tone: fresh ? 'warn' : null }),
      statTile('Calls', rows.reduce((a, r) => a + r.calls, 0), fmtInt, { testid: 'tile-model-calls' }));
    clear(inv).append(dataTable([
      { key: 'provider', label: 'Provider' },
      { key: 'request_model', label: 'Requested model', render: (r) => h('span', {}, h('span', { class: 'cell-main' }, r.request_model ?? '—'), r.new ? [' ', h('span', { class: 'badge new', 'data-testid': 'badge-new' }, 'new')] : null) },
      { key: 'response_model', label: 'Answered by', render: (r) => r.version ? h('span', {}, h('span', { class: 'badge version', 'data-testid': 'badge-version', title: 'the provider answered with a different model version' }, 'version'), ' ', r.response_model) : h('span', { class: 'muted' }, r.response_model ?? '—') },
      { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
      { key: 'services_n', label: 'Services', align: 'right', render: (r) => h('span', { title: (r.services || []).join(', ') }, String(r.services_n)) },
      { key: 'first_seen', label: 'First seen', align: 'right', render: (r) => h('span', { title: r.first_seen }, fmtTime(r.first_seen, false)) },
      { key: 'last_seen', label: 'Last seen', align: 'right', render: (r) => h('span', { title: r.last_seen }, fmtAgo(r.last_seen)) },
    ], rows, {
      testid: 'models-table', rowTestid: 'model-row', sort: { key: 'calls', dir: 'desc' },
      rowAttrs: (r) => ({ 'data-model': r.request_model ?? '', 'data-response-model': r.response_model ?? '', 'data-provider': r.provider ?? '', 'data-calls': r.calls }),
      onRowClick: (r) => navigate('/traces', { model: r.request_model, provider: r.provider }),
      empty: 'No model calls in this range',
    }));
  }).catch((e) => { if (ctx.isCurrent()) clear(inv).append(errorBox(e)); });

  const p = { ...commonParams(), by: 'model' };
  fillAsync(latEl, api.get('/v1/explore/latency', p), (d) => dataTable([
    { key: 'group', label: 'Model', render: (r) => h('span', { class: 'cell-main' }, r.group ?? '(none)') },
    { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
    { key: 'p50', label: 'P50', align: 'right', format: fmtMs, sortValue: (r) => r.p50 },
    { key: 'p90', label: 'P90', align: 'right', format: fmtMs },
    { key: 'p99', label: 'P99', align: 'right', format: fmtMs },
    { key: 'ttft', label: 'TTFT P50', align: 'right', format: fmtMs },
  ], d.groups.map((g) => ({ group: g.group, calls: g.calls, p50: g.duration_ms?.p50, p90: g.duration_ms?.p90, p99: g.duration_ms?.p99, ttft: g.ttft_ms?.p50 })),
  { sort: { key: 'p90', dir: 'desc' }, testid: 'models-latency-table', onRowClick: (r) => setParams({ model: r.group }) }));

  const tok = api.get('/v1/explore/tokens', p);
  fillAsync(costEl, tok, (d) => barChart(
    d.groups.filter((g) => g.cost_usd !== null).sort((a, b) => b.cost_usd - a.cost_usd).slice(0, 15)
      .map((g) => ({ label: g.group ?? '(none)', value: g.cost_usd, onClick: g.group === null ? null : () => setParams({ model: g.group }) })),
    { format: fmtCost, testid: 'models-cost-bars', color: '#2ea37a' }));
  fillAsync(tokEl, tok, (d) => dataTable([
    { key: 'group', label: 'Model', render: (r) => h('span', { class: 'cell-main' }, r.group ?? '(none)') },
    { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
    { key: 'input', label: 'Input tokens', align: 'right', format: fmtTokens },
    { key: 'output', label: 'Output tokens', align: 'right', format: fmtTokens },
    { key: 'mean_in', label: 'Input / call', align: 'right', format: fmtNum },
    { key: 'mean_out', label: 'Output / call', align: 'right', format: fmtNum },
    { key: 'cost', label: 'Cost', align: 'right', format: fmtCost },
    { key: 'cost_per_call', label: 'Cost / call', align: 'right', format: fmtCost },
  ], d.groups.map((g) => ({
    group: g.group, calls: g.calls, input: g.totals?.input_tokens, output: g.totals?.output_tokens,
    mean_in: g.mean_per_call?.input_tokens, mean_out: g.mean_per_call?.output_tokens, cost: g.cost_usd,
    cost_per_call: g.cost_usd !== null && g.priced_calls ? g.cost_usd / g.priced_calls : null,
  })), { sort: { key: 'cost', dir: 'desc' }, testid: 'models-tokens-table' }));
}
