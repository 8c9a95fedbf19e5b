/**
 * pages/overview.js — `#/`: the health of all LLM traffic in the range. Stat tiles from the timeseries
 * `total`, charts over time (calls, error rate, latency P50/P90/P99, TTFT, tokens, cost) from the same
 * answer, and the top models / services tables (latency + errors + tokens joined by group).
 */
import { h, clear } from '../dom.js';
import { lineChart, statTile, dataTable, card, errorBox, loading, fillAsync, emptyState } from '../charts.js';
import { fmtInt, fmtPct, fmtMs, fmtTokens, fmtCost, fmtNum } from '../format.js';
import { timeseries, fieldsSeries, groupStats } from '../data.js';
import { link, navigate, absRange } from '../state.js';

export function render(root, ctx) {
  const tiles = h('div', { class: 'tiles', 'data-testid': 'overview-tiles' }, loading());
  const charts = h('div', { class: 'grid', 'data-testid': 'overview-charts' });
  const tables = h('div', { class: 'grid' });
  const body = h('div', {}, tiles, charts, h('div', { style: { height: '14px' } }), tables);
  clear(root).append(body);
  const range = absRange();

  timeseries().then((ts) => {
    if (!ctx.isCurrent()) return;
    const t = ts.total || {};
    clear(tiles).append(
      statTile('Calls', t.calls, fmtInt, { testid: 'tile-calls', sub: `${fmtNum(t.models)} models · ${fmtNum(t.services)} services` }),
      statTile('Error rate', t.error_rate, fmtPct, { testid: 'tile-error-rate', tone: t.error_rate > 0.05 ? 'bad' : t.error_rate > 0.01 ? 'warn' : null, sub: `${fmtInt(t.errors)} errors` }),
      statTile('Latency P50', t.p50_ms, fmtMs, { testid: 'tile-p50' }),
      statTile('Latency P90', t.p90_ms, fmtMs, { testid: 'tile-p90' }),
      statTile('Latency P99', t.p99_ms, fmtMs, { testid: 'tile-p99' }),
      statTile('TTFT P50', t.ttft_p50_ms, fmtMs, { testid: 'tile-ttft-p50' }),
      statTile('Input tokens', t.input_tokens, fmtTokens, { testid: 'tile-input-tokens' }),
      statTile('Output tokens', t.output_tokens, fmtTokens, { testid: 'tile-output-tokens' }),
      statTile('Cost', t.cost_usd, fmtCost, { testid: 'tile-cost' }),
    );
    const x = [ts.window?.from ?? range.from, ts.window?.to ?? range.to];
    const step = ts.step_seconds ? `per ${fmtStep(ts.step_seconds)}` : '';
    if (!t.calls) {
      charts.append(h('div', { class: 'span-2' }, card('', emptyState('No LLM calls in this range', 'Widen the time range or remove filters.'))));
      return;
    }
    charts.append(
      card('Calls', lineChart(fieldsSeries(ts, ['calls'], { calls: 'calls' }), { format: fmtNum, xDomain: x, area: true, testid: 'chart-calls' }), { sub: step }),
      card('Error rate', lineChart(fieldsSeries(ts, ['error_rate'], { error_rate: 'error rate' }), { format: fmtPct, xDomain: x, area: true, testid: 'chart-error-rate' }), { sub: step }),
      card('Latency', lineChart(fieldsSeries(ts, ['p50_ms', 'p90_ms', 'p99_ms'], { p50_ms: 'P50', p90_ms: 'P90', p99_ms: 'P99' }), { format: fmtMs, xDomain: x, testid: 'chart-latency' }), { sub: 'duration percentiles' }),
      card('Time to first token', lineChart(fieldsSeries(ts, ['ttft_p50_ms', 'ttft_p90_ms'], { ttft_p50_ms: 'P50', ttft_p90_ms: 'P90' }), { format: fmtMs, xDomain: x, testid: 'chart-ttft' }), { sub: 'streamed calls' }),
      card('Tokens', lineChart(fieldsSeries(ts, ['input_tokens', 'output_tokens'], { input_tokens: 'input', output_tokens: 'output' }), { format: fmtTokens, xDomain: x, testid: 'chart-tokens' }), { sub: step }),
      card('Cost', lineChart(fieldsSeries(ts, ['cost_usd'], { cost_usd: 'cost' }), { format: fmtCost, xDomain: x, area: true, testid: 'chart-cost' }), { sub: step }),
    );
  }).catch((e) => { if (ctx.isCurrent()) clear(tiles).append(h('div', { style: { gridColumn: '1 / -1' } }, errorBox(e))); });

  const topTable = (by, label) => {
    const el = h('div');
    tables.append(card('Top ' + label + 's', el, { testid: 'top-' + by + 's', actions: h('a', { href: link('/explore', { by }) }, 'Explore →') }));
    fillAsync(el, groupStats(by), (g) => dataTable([
      { key: 'key', label, render: (r) => h('span', { class: 'cell-main' }, r.key) },
      { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
      { key: 'error_rate', label: 'Errors', align: 'right', format: fmtPct },
      { key: 'p50_ms', label: 'P50', align: 'right', format: fmtMs },
      { key: 'p90_ms', label: 'P90', align: 'right', format: fmtMs },
      { key: 'tokens', label: 'Tokens', align: 'right', format: fmtTokens, sortValue: (r) => r.tokens },
      { key: 'cost_usd', label: 'Cost', align: 'right', format: fmtCost },
    ], g.rows.slice(0, 10).map((r) => ({ ...r, tokens: (r.input_tokens || 0) + (r.output_tokens || 0) })), {
      sort: { key: 'calls', dir: 'desc' }, rowTestid: 'top-row', testid: 'top-' + by + '-table',
      onRowClick: (r) => navigate('/traces', { [by]: r.group }),
      empty: 'No calls in this range',
    }));
  };
  topTable('model', 'Model');
  topTable('service', 'Service');
}

export function fmtStep(sec) {
  if (sec % 86400 === 0) return sec / 86400 + 'd';
  if (sec % 3600 === 0) return sec / 3600 + 'h';
  if (sec % 60 === 0) return sec / 60 + 'm';
  return sec + 's';
}
