/**
 * pages/traces.js — `#/traces` and `#/traces/<trace_id>?span=<span_id>`.
 * List: `GET /v1/spans` page by page (tabs newest / slowest / errors, free-text search, "load more" with the
 * cursor), filtered by the global range and filters. Detail: `GET /v1/traces/{id}` — a waterfall of the
 * trace's spans on a time axis, and for the selected span its errors, timings, tokens, cost, capture flags,
 * the conversation (OTel GenAI messages, parsed defensively), tool definitions and every attribute.
 */
import { h, clear } from '../dom.js';
import { dataTable, card, errorBox, loading, statTile, emptyState, minOf, maxOf } from '../charts.js';
import { fmtInt, fmtMs, fmtTokens, fmtCost, fmtTime, fmtDateTime } from '../format.js';
import { api } from '../api.js';
import { commonParams, setParams, link, navigate, current } from '../state.js';

const TABS = [['newest', 'Newest'], ['slowest', 'Slowest'], ['errors', 'Errors']];
const PAGE = 50;

export function render(root, ctx) {
  if (ctx.segments[1]) return renderDetail(root, ctx, ctx.segments[1]);
  return renderList(root, ctx);
}

export function isError(sp) {
  return Boolean(sp.error_type || sp.error_message || (sp.http_status && sp.http_status >= 400));
}

function statusCell(sp) {
  if (isError(sp)) return h('span', { class: 'badge bad', title: sp.error_message || '' }, sp.error_type || String(sp.http_status || 'error'));
  return h('span', { class: 'badge ok' }, String(sp.http_status ?? 'ok'));
}

function renderList(root, ctx) {
  const tab = TABS.some((t) => t[0] === ctx.params.tab) ? ctx.params.tab : 'newest';
  const q = ctx.params.q || '';
  const search = h('input', { type: 'search', placeholder: 'Search ids, service, model, errors, prompt and completion text…', value: q, 'data-testid': 'traces-search' });
  const doSearch = () => setParams({ q: search.value.trim() || null });
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') doSearch(); });
  const tableEl = h('div', {}, loading());
  const more = h('div', { class: 'load-more', hidden: true });
  const count = h('span', { class: 'card-sub', 'data-testid': 'traces-count' });
  clear(root).append(
    h('div', { class: 'tabs', 'data-testid': 'traces-tabs' }, TABS.map(([v, l]) =>
      h('button', { class: ['tab', v === tab && 'on'], 'data-testid': 'tab-' + v, onClick: () => setParams({ tab: v === 'newest' ? null : v, cursor: null }) }, l))),
    h('div', { class: 'toolbar' }, h('div', { class: 'search-row' }, search,
      h('button', { class: 'btn', 'data-testid': 'traces-search-go', onClick: doSearch }, 'Search'),
      q ? h('button', { class: 'btn ghost', onClick: () => setParams({ q: null }) }, 'Clear') : null)),
    card('Calls', h('div', {}, tableEl, more), { testid: 'traces-list', actions: count }));

  const rows = [];
  const params = { ...commonParams(), sort: tab === 'slowest' ? 'slowest' : 'newest', limit: PAGE };
  if (tab === 'errors') params.errors = 'true';
  if (q) params.search = q;

  const draw = () => {
    clear(tableEl).append(dataTable([
      { key: 'start_time', label: 'Time', sortable: false, render: (r) => h('span', { title: r.start_time }, fmtTime(r.start_time)) },
      { key: 'service_name', label: 'Service', sortable: false },
      { key: 'provider', label: 'Provider', sortable: false },
      { key: 'request_model', label: 'Model', sortable: false, render: (r) => h('span', { class: 'cell-main' }, r.request_model ?? '—') },
      { key: 'operation', label: 'Operation', sortable: false },
      { key: 'http_status', label: 'Status', sortable: false, render: statusCell },
      { key: 'duration_ms', label: 'Duration', align: 'right', sortable: false, format: fmtMs },
      { key: 'ttft_ms', label: 'TTFT', align: 'right', sortable: false, format: fmtMs },
      { key: 'input_tokens', label: 'In', align: 'right', sortable: false, format: fmtTokens },
      { key: 'output_tokens', label: 'Out', align: 'right', sortable: false, format: fmtTokens },
      { key: 'cost_usd', label: 'Cost', align: 'right', sortable: false, format: fmtCost },
    ], rows, {
      testid: 'traces-table', rowTestid: 'trace-row',
      rowAttrs: (r) => ({ 'data-span-id': r.span_id, 'data-trace-id': r.trace_id, class: ['clickable', isError(r) && 'row-error'].filter(Boolean).join(' ') }),
      onRowClick: (r) => navigate('/traces/' + r.trace_id, { span: r.span_id }),
      empty: q ? `No calls match “${q}” in this range` : 'No calls in this range',
    }));
    count.textContent = rows.length ? `${rows.length} shown` : '';
  };

  const loadPage = (cursor) => {
    clear(more).append(loading('Loading more…'));
    return api.get('/v1/spans', { ...params, cursor }).then((d) => {
      if (!ctx.isCurrent()) return;
      rows.push(...(d.spans || []));
      draw();
      clear(more);
      more.hidden = !d.next_cursor;
      if (d.next_cursor) more.append(h('button', { class: 'btn', 'data-testid': 'traces-more', onClick: () => loadPage(d.next_cursor) }, 'Load more'));
    }).catch((e) => { if (ctx.isCurrent()) { clear(more).append(errorBox(e)); more.hidden = false; if (!rows.length) clear(tableEl); } });
  };
  loadPage(null);
}

/* ------------------------------------------------------------------------------------------------ detail */

/** Parse a JSON text column; null when empty, {raw} when it is not JSON. */
function parseJson(text) {
  if (text === null || text === undefined || text === '') return null;
  if (typeof text !== 'string') return { value: text };
  try { return { value: JSON.parse(text) }; } catch { return { raw: text }; }
}

function pretty(v) {
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}

function renderPart(part) {
  if (part === null || part === undefined) return null;
  if (typeof part === 'string') return h('div', { class: 'msg-part' }, part);
  const type = part.type || (part.content !== undefined ? 'text' : 'unknown');
  if (type === 'text' || type === 'reasoning') {
    const c = typeof part.content === 'string' ? part.content : pretty(part.content ?? '');
    return h('div', { class: 'msg-part', 'data-part': type }, type === 'reasoning' ? h('div', { class: 'muted' }, 'reasoning') : null, c);
  }
  if (type === 'tool_call') {
    return h('div', { class: 'msg-part part-tool', 'data-part': 'tool_call' }, h('span', { class: 'tool-name' }, '→ ' + (part.name || 'tool')),
      part.id ? h('span', { class: 'muted' }, '  ' + part.id) : null, h('pre', { class: 'raw' }, pretty(part.arguments ?? {})));
  }
  if (type === 'tool_call_response') {
    return h('div', { class: 'msg-part part-tool', 'data-part': 'tool_call_response' }, h('span', { class: 'tool-name' }, '← result'),
      part.id ? h('span', { class: 'muted' }, '  ' + part.id) : null, h('pre', { class: 'raw' }, pretty(part.response ?? part.result ?? '')));
  }
  return h('div', { class: 'msg-part' }, h('span', { class: 'badge' }, type), h('pre', { class: 'raw' }, pretty(part)));
}

function renderMessage(role, parts, extra) {
  const r = String(role || 'message').toLowerCase();
  return h('div', { class: ['msg', r], 'data-testid': 'message', 'data-role': r },
    h('div', { class: 'msg-role' }, r, extra ? h('span', { class: 'muted', style: { textTransform: 'none', fontWeight: 400 } }, extra) : null),
    h('div', { class: 'msg-body' }, parts.map(renderPart)));
}

/** system_instructions, input_messages, output_messages → message boxes (raw text when not JSON). */
export function conversation(sp) {
  const out = [];
  const sys = parseJson(sp.system_instructions);
  if (sys) {
    if (sys.raw !== undefined) out.push(renderMessage('system', [sys.raw]));
    else out.push(renderMessage('system', Array.isArray(sys.value) ? sys.value : [typeof sys.value === 'string' ? sys.value : sys.value])); 
  }
  for (const [col, fallbackRole] of [['input_messages', 'user'], ['output_messages', 'assistant']]) {
    const m = parseJson(sp[col]);
    if (!m) continue;
    if (m.raw !== undefined) { out.push(renderMessage(fallbackRole, [m.raw], col + ' (raw)')); continue; }
    const list = Array.isArray(m.value) ? m.value : [m.value];
    for (const msg of list) {
      if (msg && typeof msg === 'object' && !Array.isArray(msg)) {
        const parts = Array.isArray(msg.parts) ? msg.parts : msg.content !== undefined ? [{ type: 'text', content: msg.content }] : [msg];
        out.push(renderMessage(msg.role || fallbackRole, parts, msg.finish_reason ? 'finish: ' + msg.finish_reason : null));
      } else out.push(renderMessage(fallbackRole, [typeof msg === 'string' ? msg : pretty(msg)]));
    }
  }
  return out;
}

function flags(sp) {
  let f = sp.capture_flags;
  if (typeof f === 'string') { try { f = JSON.parse(f); } catch { f = f.split(','); } }
  return Array.isArray(f) ? f.filter(Boolean) : [];
}

function waterfall(spans, selected, onSelect) {
  const t0 = minOf(spans, (s) => +new Date(s.start_time));
  const endOf = (s) => (s.end_time ? +new Date(s.end_time) : +new Date(s.start_time) + (s.duration_ms || 0));
  const t1 = maxOf(spans, endOf);
  const total = Math.max(t1 - t0, 1);
  const el = h('div', { class: 'waterfall', 'data-testid': 'waterfall' },
    h('div', { class: 'wf-axis' }, h('div', {}, 'span'), h('div', {}, h('span', {}, '0'), h('span', {}, fmtMs(total / 2)), h('span', {}, fmtMs(total))), h('div', { style: { textAlign: 'right' } }, 'duration')));
  // Indent children under their parent span when the trace carries parent ids.
  const byId = new Map(spans.map((x) => [x.span_id, x]));
  const depth = (x, n = 0) => (x.parent_span_id && byId.has(x.parent_span_id) && n < 8 ? depth(byId.get(x.parent_span_id), n + 1) : n);
  for (const sp of spans) {
    const st = +new Date(sp.start_time) - t0;
    const dur = sp.duration_ms ?? 0;
    const row = h('div', { class: ['wf-row', sp.span_id === selected && 'selected'], 'data-testid': 'waterfall-row', 'data-span-id': sp.span_id, onClick: () => onSelect(sp) },
      h('div', { class: 'wf-name', title: sp.span_id, style: { paddingLeft: depth(sp) * 14 + 'px' } }, depth(sp) ? h('span', { class: 'muted' }, '└ ') : null, h('span', { class: 'cell-main' }, sp.service_name || '—'), ' ',
        h('span', { class: 'muted' }, [sp.operation, sp.request_model].filter(Boolean).join(' · '))),
      h('div', { class: 'wf-track' },
        h('div', { class: ['wf-bar', isError(sp) && 'err'], style: { left: (st / total) * 100 + '%', width: (dur / total) * 100 + '%' }, title: `${fmtMs(dur)} from +${fmtMs(st)}` }),
        sp.ttft_ms ? h('div', { class: 'wf-ttft', style: { left: ((st + sp.ttft_ms) / total) * 100 + '%' }, title: 'first token at ' + fmtMs(sp.ttft_ms) }) : null),
      h('div', { class: 'wf-dur' }, fmtMs(dur)));
    el.append(row);
  }
  return el;
}

const BIG = new Set(['input_messages', 'output_messages', 'system_instructions', 'tool_definitions', 'attributes']);

function attributesTable(sp) {
  const rows = [];
  for (const [k, v] of Object.entries(sp)) {
    if (BIG.has(k) || v === null || v === undefined) continue;
    rows.push([k, Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  }
  let attrs = sp.attributes;
  if (typeof attrs === 'string') { try { attrs = JSON.parse(attrs); } catch { rows.push(['attributes', attrs]); attrs = null; } }
  if (attrs && typeof attrs === 'object') for (const [k, v] of Object.entries(attrs)) rows.push([k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  return h('dl', { class: 'kv', 'data-testid': 'span-attributes' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function renderDetail(root, ctx, traceId) {
  const body = h('div', {}, loading());
  clear(root).append(
    h('div', { class: 'detail-head' }, h('a', { href: link('/traces', { tab: current().params.tab }), 'data-testid': 'back-to-traces' }, '← Traces'),
      h('h2', {}, 'Trace ', h('span', { class: 'mono', 'data-testid': 'trace-id' }, traceId))),
    body);
  api.get('/v1/traces/' + encodeURIComponent(traceId)).then((d) => {
    if (!ctx.isCurrent()) return;
    const spans = (d.spans || []).slice().sort((a, b) => new Date(a.start_time) - new Date(b.start_time));
    if (!spans.length) { clear(body).append(emptyState('This trace has no spans')); return; }
    const sp = spans.find((x) => x.span_id === ctx.params.span) || spans[0];
    const select = (x) => setParams({ span: x.span_id }, { replace: true });
    const err = isError(sp);
    const fl = flags(sp);
    const conv = conversation(sp);
    const tools = parseJson(sp.tool_definitions);
    clear(body).append(h('div', { class: 'stack', 'data-testid': 'trace-detail', 'data-span-id': sp.span_id },
      card(`Timeline · ${spans.length} span${spans.length > 1 ? 's' : ''}`, waterfall(spans, sp.span_id, select), { testid: 'trace-timeline', sub: fmtDateTime(spans[0].start_time) }),
      err ? h('div', { class: 'err-panel', 'data-testid': 'span-error' },
        h('strong', {}, `${sp.error_type || 'Error'}${sp.http_status ? ' · HTTP ' + sp.http_status : ''}`), sp.error_message || 'The call failed.') : null,
      h('div', { class: 'tiles', style: { marginBottom: 0 } },
        statTile('Duration', sp.duration_ms, fmtMs, { testid: 'span-duration' }),
        statTile('TTFT', sp.ttft_ms, fmtMs, { testid: 'span-ttft' }),
        statTile('Input tokens', sp.input_tokens, fmtInt, { testid: 'span-input-tokens' }),
        statTile('Output tokens', sp.output_tokens, fmtInt, { testid: 'span-output-tokens' }),
        statTile('Cost', sp.cost_usd, fmtCost, { testid: 'span-cost' }),
        statTile('Status', sp.http_status, (v) => (v ?? '—') + '', { testid: 'span-status', tone: err ? 'bad' : 'ok' })),
      h('div', { class: 'chips', 'data-testid': 'span-badges' },
        h('span', { class: 'badge' }, sp.provider || 'unknown provider'), h('span', { class: 'badge' }, sp.request_model || 'unknown model'),
        sp.response_model && sp.response_model !== sp.request_model ? h('span', { class: 'badge version' }, 'answered by ' + sp.response_model) : null,
        sp.streaming ? h('span', { class: 'badge' }, 'streaming') : null,
        ...(sp.finish_reasons || []).map((f) => h('span', { class: 'badge' }, 'finish: ' + f)),
        ...fl.map((f) => h('span', { class: 'badge flag', 'data-testid': 'capture-flag' }, f))),
      h('div', { class: 'grid' },
        card('Conversation', conv.length ? h('div', { class: 'conversation', 'data-testid': 'conversation' }, conv)
          : emptyState('No content captured', fl.length ? 'capture flags: ' + fl.join(', ') : 'The capture policy may keep metadata only.'), { testid: 'conversation-card' }),
        h('div', { class: 'stack' },
          card('Span', attributesTable(sp), { testid: 'attributes-card' }),
          tools ? card('Tool definitions', h('pre', { class: 'raw' }, tools.raw ?? pretty(tools.value))) : null)),
      spans.length > 1 ? card('Spans in this trace', dataTable([
        { key: 'start_time', label: 'Start', render: (r) => fmtTime(r.start_time) },
        { key: 'span_id', label: 'Span', render: (r) => h('span', { class: 'mono' }, r.span_id) },
        { key: 'service_name', label: 'Service' },
        { key: 'request_model', label: 'Model' },
        { key: 'http_status', label: 'Status', render: statusCell },
        { key: 'duration_ms', label: 'Duration', align: 'right', format: fmtMs },
        { key: 'input_tokens', label: 'In', align: 'right', format: fmtTokens },
        { key: 'output_tokens', label: 'Out', align: 'right', format: fmtTokens },
      ], spans, { testid: 'trace-spans', rowTestid: 'trace-span-row', onRowClick: select,
        rowAttrs: (r) => ({ class: ['clickable', r.span_id === sp.span_id && 'selected'].filter(Boolean).join(' ') }) })) : null));
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(errorBox(e)); });
}
