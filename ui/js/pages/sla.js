/**
 * pages/sla.js — `#/sla?threshold_ms=1000`: how many calls were slower than the threshold, and who causes
 * them (explore/sla breakdowns by model, provider, service, operation, prompt size, output size, streaming:
 * breach rate and share of all breaches), plus the slowest calls, each linking to its trace.
 */
import { h, clear } from '../dom.js';
import { statTile, dataTable, card, errorBox, loading, emptyState } from '../charts.js';
import { fmtInt, fmtPct, fmtMs, fmtTime, fmtTokens } from '../format.js';
import { api } from '../api.js';
import { commonParams, setParams, link, navigate } from '../state.js';

const BREAKDOWNS = [
  ['model', 'Model', 'model'], ['service', 'Service', 'service'], ['provider', 'Provider', 'provider'],
  ['operation', 'Operation', 'operation'], ['prompt_size', 'Prompt size', null], ['output_size', 'Output size', null],
  ['streaming', 'Streaming', null],
];

function rateBar(r) {
  return h('span', {}, h('span', { class: 'ratebar' }, h('span', { style: { width: Math.min(100, (r || 0) * 100) + '%' } })), fmtPct(r));
}

export function render(root, ctx) {
  const threshold = Number(ctx.params.threshold_ms) > 0 ? Number(ctx.params.threshold_ms) : 1000;
  const input = h('input', { type: 'number', min: 1, step: 50, value: threshold, 'data-testid': 'sla-threshold', style: { width: '110px' } });
  const apply = () => setParams({ threshold_ms: input.value });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
  const tiles = h('div', { class: 'tiles' }, loading());
  const body = h('div');
  clear(root).append(
    h('div', { class: 'toolbar' },
      h('label', { class: 'field' }, 'Latency threshold (ms)', h('div', { class: 'search-row' }, input,
        h('button', { class: 'btn primary', 'data-testid': 'sla-apply', onClick: apply }, 'Apply'))),
      h('div', { class: 'muted', style: { paddingBottom: '5px' } }, 'A call breaches the SLA when its total duration is over the threshold.')),
    tiles, body);

  api.get('/v1/explore/sla', { ...commonParams(), threshold_ms: threshold }).then((d) => {
    if (!ctx.isCurrent()) return;
    clear(tiles).append(
      statTile('Calls', d.calls, fmtInt, { testid: 'sla-total' }),
      statTile(`Over ${fmtMs(d.threshold_ms ?? threshold)}`, d.over, fmtInt, { testid: 'sla-over', tone: d.over ? 'bad' : 'ok' }),
      statTile('Breach share', d.share, fmtPct, { testid: 'sla-share', tone: d.share > 0.05 ? 'bad' : d.share > 0.01 ? 'warn' : 'ok' }),
      statTile('Within SLA', d.calls - d.over, fmtInt, { testid: 'sla-within' }));
    if (!d.calls) { body.append(card('', emptyState('No calls in this range'))); return; }
    const grid = h('div', { class: 'grid' });
    for (const [key, label, filter] of BREAKDOWNS) {
      const rows = (d.breakdown && d.breakdown[key]) || [];
      if (!rows.length) continue;
      grid.append(card('By ' + label.toLowerCase(), dataTable([
        { key: 'value', label, render: (r) => h('span', { class: 'cell-main' }, r.value === null || r.value === undefined ? '(none)' : String(r.value)) },
        { key: 'calls', label: 'Calls', align: 'right', format: fmtInt },
        { key: 'over', label: 'Over', align: 'right', format: fmtInt },
        { key: 'breach_rate', label: 'Breach rate', align: 'right', render: (r) => rateBar(r.breach_rate), sortValue: (r) => r.breach_rate },
        { key: 'share_of_breaches', label: 'Share of breaches', align: 'right', format: fmtPct },
      ], rows, {
        sort: { key: 'share_of_breaches', dir: 'desc' }, testid: 'sla-breakdown-' + key, rowTestid: 'sla-row', limit: 12,
        onRowClick: filter ? (r) => { if (r.value !== null && r.value !== undefined) setParams({ [filter]: r.value }); } : null,
      }), { testid: 'sla-card-' + key }));
    }
    body.append(grid, h('div', { style: { height: '14px' } }), card('Slowest calls', dataTable([
      { key: 'start_time', label: 'Time', render: (r) => h('span', { title: r.start_time }, fmtTime(r.start_time)) },
      { key: 'service_name', label: 'Service' },
      { key: 'request_model', label: 'Model' },
      { key: 'streaming', label: 'Stream', render: (r) => r.streaming ? h('span', { class: 'badge' }, 'stream') : '' },
      { key: 'input_tokens', label: 'Tokens in', align: 'right', format: fmtTokens },
      { key: 'output_tokens', label: 'Tokens out', align: 'right', format: fmtTokens },
      { key: 'duration_ms', label: 'Duration', align: 'right', format: fmtMs },
      { key: 'span_id', label: 'Trace', render: (r) => h('a', { href: link('/traces/' + r.trace_id, { span: r.span_id }), 'data-testid': 'sla-slow-link' }, 'open →') },
    ], d.slowest || [], {
      sort: { key: 'duration_ms', dir: 'desc' }, testid: 'sla-slowest', rowTestid: 'sla-slow-row',
      onRowClick: (r) => navigate('/traces/' + r.trace_id, { span: r.span_id }),
    }), { testid: 'sla-slowest-card' }));
  }).catch((e) => { if (ctx.isCurrent()) clear(tiles).append(h('div', { style: { gridColumn: '1 / -1' } }, errorBox(e))); });
}
