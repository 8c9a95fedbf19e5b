/**
 * pages/explore.js — `#/explore?by=model&metric=p90_ms&chart=line`: slice the traffic by one dimension.
 * The main chart is the metric over time per group (timeseries with split), per group as bars, or its
 * distribution (explore/histogram); below it the histogram and the table of groups (latency, errors, tokens,
 * cost). Clicking a group drills down to its calls in Traces.
 */
import { h, clear, select } from '../dom.js';
import { lineChart, barChart, histogram, dataTable, card, fillAsync, colorAt } from '../charts.js';
import { fmtInt, fmtPct, fmtMs, fmtTokens, fmtCost, formatterFor, fieldLabel } from '../format.js';
import { api } from '../api.js';
import { commonParams, setParams, navigate, absRange } from '../state.js';
import { DIMENSIONS, groupStats, timeseries, seriesFor } from '../data.js';

export const METRICS = [
  ['p50_ms', 'Latency P50'], ['p90_ms', 'Latency P90'], ['p99_ms', 'Latency P99'],
  ['ttft_p50_ms', 'TTFT P50'], ['ttft_p90_ms', 'TTFT P90'],
  ['calls', 'Calls'], ['errors', 'Errors'], ['error_rate', 'Error rate'],
  ['input_tokens', 'Input tokens'], ['output_tokens', 'Output tokens'], ['cost_usd', 'Cost'],
];
const CHARTS = [['line', 'Over time'], ['bar', 'By group'], ['histogram', 'Distribution']];

/** Which histogram metric shows the distribution behind a chosen metric. */
function histMetric(metric) {
  if (metric.startsWith('ttft')) return 'ttft_ms';
  if (metric === 'input_tokens' || metric === 'output_tokens' || metric === 'cost_usd') return metric;
  return 'duration_ms';
}

export function render(root, ctx) {
  const p = ctx.params;
  const by = DIMENSIONS.some((d) => d[0] === p.by) ? p.by : 'model';
  const metric = METRICS.some((m) => m[0] === p.metric) ? p.metric : 'p90_ms';
  const chart = CHARTS.some((c) => c[0] === p.chart) ? p.chart : 'line';
  const top = ['3', '5', '10'].includes(p.top) ? p.top : '5';
  const fmt = formatterFor(metric);
  const hm = histMetric(metric);
  const hfmt = formatterFor(hm);
  const dimLabel = DIMENSIONS.find((d) => d[0] === by)[1];

  const seg = (opts, value, key, testid) => h('div', { class: 'seg', 'data-testid': testid }, opts.map(([v, l]) =>
    h('button', { class: v === value ? 'on' : null, 'data-value': v, onClick: () => setParams({ [key]: v }) }, l)));
  const metricSel = select(METRICS, metric, { 'data-testid': 'explore-metric' });
  metricSel.addEventListener('change', () => setParams({ metric: metricSel.value }));
  const topSel = select([['3', 'Top 3'], ['5', 'Top 5'], ['10', 'Top 10']], top, { 'data-testid': 'explore-top' });
  topSel.addEventListener('change', () => setParams({ top: topSel.value }));

  const main = h('div');
  const hist = h('div');
  const share = h('div');
  const groups = h('div');
  clear(root).append(
    h('div', { class: 'toolbar' },
      h('label', { class: 'field' }, 'Group by', seg(DIMENSIONS, by, 'by', 'explore-by')),
      h('label', { class: 'field' }, 'Metric', metricSel),
      h('label', { class: 'field' }, 'Chart', seg(CHARTS, chart, 'chart', 'explore-chart')),
      h('label', { class: 'field' }, 'Groups', topSel)),
    card(`${fieldLabel(metric)} by ${dimLabel.toLowerCase()}`, main, { testid: 'explore-main', sub: chart === 'line' ? 'over time, top groups' : chart === 'bar' ? 'whole range' : 'distribution' }),
    h('div', { style: { height: '14px' } }),
    h('div', { class: 'grid' },
      chart !== 'histogram' ? card(`Distribution of ${hm.replace('_', ' ')}`, hist, { testid: 'explore-histogram', sub: `top ${top} ${dimLabel.toLowerCase()}s stacked` }) : null,
      card(`Calls by ${dimLabel.toLowerCase()}`, share, { testid: 'explore-share', sub: 'top 12', wide: chart === 'histogram' }),
      card(`${dimLabel}s`, groups, { testid: 'explore-groups', wide: true, sub: 'click a row to see its calls' })));

  const stats = groupStats(by);
  const range = absRange();
  const histReq = () => api.get('/v1/explore/histogram', { ...commonParams(), metric: hm, split: by, top });
  if (chart === 'line') {
    fillAsync(main, timeseries({ split: by, top }), (ts) => lineChart(seriesFor(ts, metric, (se) => se.group ?? '(none)'),
      { format: fmt, xDomain: [ts.window?.from ?? range.from, ts.window?.to ?? range.to], height: 260, legend: true, testid: 'explore-line' }));
  } else if (chart === 'bar') {
    fillAsync(main, stats, (g) => barChart(g.rows.filter((r) => r[metric] !== null && r[metric] !== undefined)
      .sort((a, b) => b[metric] - a[metric]).slice(0, 30)
      .map((r, i) => ({ label: r.key, value: r[metric], color: colorAt(i), onClick: () => navigate('/traces', { [by]: r.group }) })),
    { format: fmt, testid: 'explore-bars' }));
  } else {
    fillAsync(main, histReq(), (d) => histogram(d.boundaries, d.groups, { format: hfmt, height: 260, xLabel: hm, testid: 'explore-hist-main' }));
  }
  if (chart !== 'histogram') fillAsync(hist, histReq(), (d) => histogram(d.boundaries, d.groups, { format: hfmt, xLabel: hm, height: 262 }));

  fillAsync(share, stats, (g) => barChart(g.rows.slice(0, 12).map((r, i) => ({ label: r.key, value: r.calls, color: colorAt(i), onClick: () => navigate('/traces', { [by]: r.group }) })),
    { format: fmtInt, testid: 'explore-share-bars' }));
  fillAsync(groups, stats, (g) => dataTable([
    { key: 'key', label: dimLabel, render: (r) => h('span', { class: 'cell-main' }, r.key) },
    { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
    { key: 'error_rate', label: 'Errors', align: 'right', format: fmtPct },
    { key: 'p50_ms', label: 'P50', align: 'right', format: fmtMs },
    { key: 'p90_ms', label: 'P90', align: 'right', format: fmtMs },
    { key: 'p99_ms', label: 'P99', align: 'right', format: fmtMs },
    { key: 'ttft_p50_ms', label: 'TTFT P50', align: 'right', format: fmtMs },
    { key: 'input_tokens', label: 'Tokens in', align: 'right', format: fmtTokens },
    { key: 'output_tokens', label: 'Tokens out', align: 'right', format: fmtTokens },
    { key: 'cost_usd', label: 'Cost', align: 'right', format: fmtCost },
  ], g.rows, {
    sort: { key: METRICS.some((m) => m[0] === metric) ? metric : 'calls', dir: 'desc' }, testid: 'explore-table', rowTestid: 'group-row',
    rowAttrs: (r) => ({ 'data-group': r.key, 'data-calls': r.calls }),
    onRowClick: (r) => navigate('/traces', { [by]: r.group }),
  }));
}
