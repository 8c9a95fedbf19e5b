/**
 * pages/alerts.js — `#/alerts` (rules with their current state; create from a template or from scratch),
 * `#/alerts/new[?template=<i>]` and `#/alerts/<id>` (state, evaluate now, enable / disable, edit, delete,
 * and the history of state changes with the notifications each one sent).
 */
import { h, clear, select } from '../dom.js';
import { card, dataTable, errorBox, loading, emptyState, statTile, lineChart, fillAsync } from '../charts.js';
import { timeseries } from '../data.js';
import { fmtAgo, fmtDateTime, formatterFor, fmtNum, fieldLabel } from '../format.js';
import { api } from '../api.js';
import { link, navigate, ui } from '../state.js';

export const ALERT_METRICS = [
  ['error_rate', 'Error rate'], ['sla_breach_rate', 'SLA breach rate'], ['p50_ms', 'Latency P50'], ['p90_ms', 'Latency P90'],
  ['p99_ms', 'Latency P99'], ['ttft_p90_ms', 'TTFT P90'], ['calls', 'Calls'], ['errors', 'Errors'], ['cost_usd', 'Cost'],
];
const OPS = ['>', '>=', '<', '<='];
/** Metrics whose value is a fraction 0–1: the form shows and takes their threshold as a percentage. */
const RATE_METRICS = ['error_rate', 'sla_breach_rate'];
const isRateRule = (q) => !!q && q.kind !== 'sql' && RATE_METRICS.includes(q.metric);
const toPct = (v) => (v === '' || v === null || v === undefined || Number.isNaN(Number(v)) ? '' : String(Number((Number(v) * 100).toPrecision(12))));

export function render(root, ctx) {
  const id = ctx.segments[1];
  if (ctx.refresh && ui.busy) return undefined;
  if (!id) return renderList(root, ctx);
  if (id === 'new') return renderForm(root, ctx, null);
  return renderRule(root, ctx, id);
}

function stateBadge(st) {
  const s = (st && st.state) || 'unknown';
  return h('span', { class: ['badge', s], 'data-testid': 'alert-state', 'data-state': s }, h('span', { class: ['dot-state', s] }), s);
}

function fmtValue(rule, v) {
  if (v === null || v === undefined) return '—';
  if (rule.query && rule.query.kind === 'metric') return formatterFor(rule.query.metric)(v);
  return fmtNum(v);
}

function querySummary(rule) {
  const q = rule.query || {};
  if (q.kind === 'sql') return h('span', { class: 'mono truncate', title: q.sql }, q.sql);
  const f = Object.entries(q.filters || {}).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ');
  const m = (ALERT_METRICS.find((x) => x[0] === q.metric) || [q.metric, q.metric])[1];
  return h('span', {}, m, q.metric === 'sla_breach_rate' && q.threshold_ms ? ` (> ${q.threshold_ms} ms)` : '', f ? h('span', { class: 'muted' }, ' · ' + f) : '');
}

function condition(rule) {
  const c = rule.condition || {};
  return `${c.op} ${fmtValue(rule, c.threshold)} for ${rule.for || '0s'} over ${rule.window}`;
}

async function evaluate(rule, btn, after) {
  if (btn) btn.disabled = true;
  try {
    const st = await api.post(`/v1/alerts/${encodeURIComponent(rule.id)}/evaluate`);
    after(st);
  } catch (e) { after(null, e); } finally { if (btn) btn.disabled = false; }
}

async function setEnabled(rule, enabled) {
  const body = { ...rule, enabled };
  for (const k of ['id', 'status', 'created_at', 'updated_at']) delete body[k];
  return api.put('/v1/alerts/' + encodeURIComponent(rule.id), body);
}

function newMenu() {
  const menu = h('div', { class: 'card', style: { marginBottom: '14px' }, 'data-testid': 'alert-templates' });
  const btn = h('button', { class: 'btn primary', 'data-testid': 'alert-new' }, '+ New alert');
  btn.addEventListener('click', async () => {
    if (!menu.hidden && menu.childElementCount) { menu.hidden = true; return; }
    menu.hidden = false;
    clear(menu).append(loading('Loading templates…'));
    try {
      const t = (await api.get('/v1/alerts/templates')).templates || [];
      clear(menu).append(h('header', { class: 'card-head' }, h('h3', {}, 'Start from'),
        h('div', { class: 'card-actions' }, h('button', { class: 'btn ghost small', onClick: () => { menu.hidden = true; } }, 'Close'))),
      h('div', { class: 'card-body list-cards' },
        t.map((x, i) => h('a', { class: 'dash-card', href: link('/alerts/new', { template: i }), 'data-testid': 'alert-template' },
          h('div', { class: 't' }, x.name), h('div', { class: 'muted' }, x.description || ''))),
        h('a', { class: 'dash-card', href: link('/alerts/new'), 'data-testid': 'alert-blank' }, h('div', { class: 't' }, 'From scratch'), h('div', { class: 'muted' }, 'A metric or SQL query and a threshold.'))));
    } catch (e) { clear(menu).append(errorBox(e), h('a', { href: link('/alerts/new'), class: 'btn', 'data-testid': 'alert-blank' }, 'Create from scratch')); }
  });
  menu.hidden = true;
  return { btn, menu };
}

function renderList(root, ctx) {
  const body = h('div', {}, loading());
  const { btn, menu } = newMenu();
  clear(root).append(h('div', { class: 'toolbar' }, h('div', { class: 'muted' }, 'Rules are evaluated by the server on their schedule; notifications go to webhooks (generic JSON or Slack).'),
    h('div', { class: 'spacer' }), btn), menu, body);
  api.get('/v1/alerts').then((d) => {
    if (!ctx.isCurrent()) return;
    const rules = d.rules || [];
    const count = (s) => rules.filter((r) => r.status && r.status.state === s).length;
    const tiles = h('div', { class: 'tiles' },
      statTile('Rules', rules.length, fmtNum, { testid: 'alerts-total' }),
      statTile('Firing', count('firing'), fmtNum, { testid: 'alerts-firing', tone: count('firing') ? 'bad' : 'ok' }),
      statTile('Pending', count('pending'), fmtNum, { tone: count('pending') ? 'warn' : null }),
      statTile('Errors', count('error'), fmtNum, { tone: count('error') ? 'bad' : null }),
      statTile('Disabled', rules.filter((r) => r.enabled === false).length, fmtNum));
    if (!rules.length) { clear(body).append(tiles, card('', emptyState('No alert rules yet', 'Create one from a template: SLA breach or error rate.'))); return; }
    const draw = () => dataTable([
      { key: 'state', label: 'State', render: (r) => stateBadge(r.status), sortValue: (r) => ({ firing: 0, error: 1, pending: 2, ok: 3 }[r.status?.state] ?? 4) },
      { key: 'name', label: 'Name', render: (r) => h('div', {}, h('a', { class: 'cell-main', href: link('/alerts/' + r.id), 'data-testid': 'alert-link' }, r.name), r.description ? h('div', { class: 'cell-sub' }, r.description) : null) },
      { key: 'query', label: 'Query', sortable: false, render: querySummary },
      { key: 'cond', label: 'Condition', sortable: false, render: (r) => h('span', { class: 'mono' }, condition(r)) },
      { key: 'value', label: 'Value', align: 'right', render: (r) => h('span', { 'data-testid': 'alert-value' }, fmtValue(r, r.status?.value)), sortValue: (r) => r.status?.value },
      { key: 'since', label: 'Since', align: 'right', render: (r) => h('span', { title: r.status?.since || '' }, fmtAgo(r.status?.since)), sortValue: (r) => r.status?.since },
      { key: 'enabled', label: 'On', sortable: false, render: (r) => {
        const cb = h('input', { type: 'checkbox', checked: r.enabled !== false, 'data-testid': 'alert-enabled' });
        cb.addEventListener('change', async () => {
          try { Object.assign(r, await setEnabled(r, cb.checked)); } catch (e) { cb.checked = !cb.checked; body.prepend(errorBox(e)); }
        });
        return h('label', { class: 'switch', title: 'enabled' }, cb, h('span'));
      } },
      { key: 'actions', label: '', sortable: false, render: (r) => {
        const ev = h('button', { class: 'btn small', 'data-testid': 'alert-evaluate' }, 'Evaluate now');
        ev.addEventListener('click', () => evaluate(r, ev, (st, e) => { if (e) body.prepend(errorBox(e)); else { r.status = st; clear(tableBox).append(draw()); } }));
        return h('div', { style: { display: 'flex', gap: '4px', justifyContent: 'flex-end' } }, ev,
          h('a', { class: 'btn small ghost', href: link('/alerts/' + r.id, { edit: 1 }) }, 'Edit'));
      } },
    ], rules, { testid: 'alerts-table', rowTestid: 'alert-row', rowAttrs: (r) => ({ 'data-id': r.id, 'data-name': r.name }), sort: { key: 'state', dir: 'asc' },
      onRowClick: (r) => navigate('/alerts/' + r.id) });
    const tableBox = h('div', {}, draw());
    clear(body).append(tiles, card('Rules', tableBox, { testid: 'alerts-card' }));
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(errorBox(e)); });
}

function renderRule(root, ctx, id) {
  if (ctx.params.edit === '1') return renderForm(root, ctx, id);
  const body = h('div', {}, loading());
  clear(root).append(body);
  Promise.all([api.get('/v1/alerts/' + encodeURIComponent(id)), api.get(`/v1/alerts/${encodeURIComponent(id)}/history`)]).then(([rule, hist]) => {
    if (!ctx.isCurrent()) return;
    const st = rule.status || {};
    const evBtn = h('button', { class: 'btn', 'data-testid': 'alert-evaluate' }, 'Evaluate now');
    evBtn.addEventListener('click', () => evaluate(rule, evBtn, (s, e) => { if (e) body.prepend(errorBox(e)); else renderRule(root, ctx, id); }));
    const toggle = h('button', { class: 'btn', 'data-testid': 'alert-toggle' }, rule.enabled === false ? 'Enable' : 'Disable');
    toggle.addEventListener('click', async () => { try { await setEnabled(rule, rule.enabled === false); renderRule(root, ctx, id); } catch (e) { body.prepend(errorBox(e)); } });
    const del = h('button', { class: 'btn danger', 'data-testid': 'alert-delete' }, 'Delete');
    del.addEventListener('click', async () => {
      if (!confirm(`Delete the alert “${rule.name}”?`)) return;
      try { await api.del('/v1/alerts/' + encodeURIComponent(id)); navigate('/alerts'); } catch (e) { body.prepend(errorBox(e)); }
    });
    const q = rule.query || {};
    const kv = [
      ['query', q.kind === 'sql' ? q.sql : `${q.metric}${q.threshold_ms ? ` (threshold ${q.threshold_ms} ms)` : ''}`],
      ['filters', Object.entries(q.filters || {}).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ') || '—'],
      ['condition', `${rule.condition?.op} ${rule.condition?.threshold}`], ['window', rule.window], ['for', rule.for], ['every', rule.every],
      ['notify', (rule.notify || []).map((n) => `${n.url} (${n.format || 'generic'})`).join('\n') || '—'],
      ['enabled', String(rule.enabled !== false)], ['created', fmtDateTime(rule.created_at)], ['updated', fmtDateTime(rule.updated_at)],
    ];
    clear(body).append(h('div', { 'data-testid': 'alert-detail', 'data-id': rule.id },
      h('div', { class: 'detail-head' }, h('a', { href: link('/alerts') }, '← Alerts'), h('h2', { 'data-testid': 'alert-name' }, rule.name), stateBadge(st),
        rule.enabled === false ? h('span', { class: 'badge' }, 'disabled') : null,
        h('div', { style: { flex: 1 } }), evBtn, toggle, h('a', { class: 'btn', href: link('/alerts/' + id, { edit: 1 }), 'data-testid': 'alert-edit' }, 'Edit'), del),
      rule.description ? h('p', { class: 'muted', style: { marginTop: 0 } }, rule.description) : null,
      st.error ? h('div', { class: 'err-panel' }, h('strong', {}, 'Evaluation failed'), st.error) : null,
      h('div', { class: 'tiles roomy' },
        statTile('Current value', st.value, (v) => fmtValue(rule, v), { testid: 'alert-current-value', tone: st.state === 'firing' ? 'bad' : st.state === 'pending' ? 'warn' : null }),
        statTile('Threshold', rule.condition?.threshold, (v) => `${rule.condition?.op} ${fmtValue(rule, v)}`),
        statTile('State since', st.since, (v) => fmtAgo(v), { sub: fmtDateTime(st.since) }),
        statTile('Last evaluated', st.last_evaluated, (v) => fmtAgo(v), { testid: 'alert-last-evaluated', sub: st.last_evaluated ? fmtDateTime(st.last_evaluated) : 'not yet' })),
      chartCard(rule),
      h('div', { class: 'grid' },
        card('Definition', h('dl', { class: 'kv' }, kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { style: { whiteSpace: 'pre-wrap' } }, v ?? '—')]))),
        card('History', historyTable(rule, hist.events || []), { testid: 'alert-history', sub: 'state changes, newest first' }))));
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(h('a', { href: link('/alerts') }, '← Alerts'), errorBox(e)); });
}

/** The rule's metric over the page's time range, with the threshold drawn across (metric rules only). */
function chartCard(rule) {
  const q = rule.query || {};
  const SERIES = ['error_rate', 'p50_ms', 'p90_ms', 'p99_ms', 'ttft_p90_ms', 'calls', 'errors', 'cost_usd'];
  if (q.kind !== 'metric' || !SERIES.includes(q.metric)) return null;
  const el = h('div');
  const filters = Object.fromEntries(Object.entries(q.filters || {}).filter(([, v]) => v));
  fillAsync(el, timeseries(filters), (ts) => lineChart(
    [{ name: q.metric, points: (ts.series[0] || { points: [] }).points.map((p) => ({ t: p.t, v: p[q.metric] ?? null })) }],
    { format: formatterFor(q.metric), xDomain: [ts.window.from, ts.window.to], area: true, height: 170, testid: 'alert-chart',
      markers: [{ y: Number(rule.condition?.threshold), label: `threshold ${rule.condition?.op} ${fmtValue(rule, rule.condition?.threshold)}` }] }));
  return h('div', { style: { marginBottom: '14px' } }, card(`${fieldLabel(q.metric)} over the selected range`, el, { sub: `with the rule's filters; the rule itself looks at the last ${rule.window}` }));
}

function historyTable(rule, events) {
  return dataTable([
    { key: 'at', label: 'At', render: (e) => h('span', { title: e.at, style: { whiteSpace: 'nowrap' } }, fmtDateTime(e.at)) },
    { key: 'change', label: 'Change', sortable: false, render: (e) => h('span', {}, stateBadge({ state: e.from }), ' → ', stateBadge({ state: e.to })) },
    { key: 'value', label: 'Value', align: 'right', render: (e) => fmtValue(rule, e.value) },
    { key: 'notifications', label: 'Notifications', sortable: false, render: (e) => h('div', {}, (e.notifications || []).map((n) =>
      h('div', { class: 'notif', 'data-testid': 'alert-notification', 'data-ok': String(n.ok) }, h('span', { class: ['badge', n.ok ? 'ok' : 'bad'] }, n.ok ? String(n.status ?? 'sent') : 'failed'),
        h('span', { class: 'notif-url', title: n.url }, n.url), n.error ? h('span', { class: 'notif-err' }, n.error) : null)),
    (e.notifications || []).length ? null : h('span', { class: 'muted' }, 'none')) },
  ], events, { testid: 'alert-history-table', rowTestid: 'alert-history-row', empty: 'No state changes yet',
    rowAttrs: (e) => ({ 'data-from': e.from, 'data-to': e.to }) });
}

const BLANK = {
  name: '', description: '', query: { kind: 'metric', metric: 'error_rate', filters: {} }, condition: { op: '>', threshold: 0.05 },
  window: '5m', for: '1m', every: '30s', notify: [], enabled: true,
};

function renderForm(root, ctx, id) {
  const body = h('div', {}, loading());
  clear(root).append(body);
  const load = id ? api.get('/v1/alerts/' + encodeURIComponent(id))
    : ctx.params.template !== undefined ? api.get('/v1/alerts/templates').then((t) => (t.templates || [])[Number(ctx.params.template)] || BLANK)
      : Promise.resolve(BLANK);
  load.then((rule0) => {
    if (!ctx.isCurrent()) return;
    ui.busy = true;
    const r = JSON.parse(JSON.stringify(rule0));
    r.query = r.query || { kind: 'metric', metric: 'error_rate' };
    r.query.filters = r.query.filters || {};
    r.condition = r.condition || { op: '>', threshold: 0 };
    r.notify = r.notify || [];
    const draw = () => {
      const inp = (attrs, get, set) => {
        const el = h(attrs.tag || 'input', { type: 'text', ...attrs, tag: undefined, value: get() ?? '' });
        el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', () => set(el.value));
        return el;
      };
      const f = (label, el, cls) => h('label', { class: ['field', cls] }, label, el);
      const kindSel = select([['metric', 'Metric'], ['sql', 'SQL (one number)']], r.query.kind, { 'data-testid': 'alert-kind' });
      kindSel.addEventListener('change', () => { r.query = kindSel.value === 'sql' ? { kind: 'sql', sql: r.query.sql || '' } : { kind: 'metric', metric: 'error_rate', filters: {} }; draw(); });
      const rate = isRateRule(r.query);
      const thresholdErr = h('div', { class: 'field-error', 'data-testid': 'alert-threshold-error', hidden: true });
      const metricSel = select(ALERT_METRICS, r.query.metric, { 'data-testid': 'alert-metric' });
      metricSel.addEventListener('change', () => { r.query.metric = metricSel.value; if (metricSel.value === 'sla_breach_rate' && !r.query.threshold_ms) r.query.threshold_ms = 1000; draw(); });
      const notify = h('div', { 'data-testid': 'alert-notify' }, r.notify.map((n, i) => {
        const fmtSel = select([['generic', 'Generic JSON'], ['slack', 'Slack']], n.format || 'generic', { 'data-testid': 'alert-notify-format' });
        fmtSel.addEventListener('change', () => { n.format = fmtSel.value; });
        return h('div', { class: 'notify-row' },
          inp({ type: 'url', placeholder: 'https://hooks.slack.com/services/…', 'data-testid': 'alert-notify-url' }, () => n.url, (v) => { n.url = v; }),
          fmtSel, h('button', { class: 'btn ghost small danger', onClick: () => { r.notify.splice(i, 1); draw(); } }, 'Remove'));
      }), h('button', { class: 'btn small', 'data-testid': 'alert-notify-add', onClick: () => { r.notify.push({ url: '', format: 'generic' }); draw(); } }, '+ Webhook'));
      const saveBtn = h('button', { class: 'btn primary', 'data-testid': 'alert-save' }, id ? 'Save' : 'Create alert');
      saveBtn.addEventListener('click', async () => {
        const t = Number(r.condition.threshold);
        const bad = r.condition.threshold === '' || r.condition.threshold === null || !Number.isFinite(t) ? 'The threshold must be a number.'
          : isRateRule(r.query) && (t < 0 || t > 1) ? 'A rate threshold is a percentage between 0 and 100 (e.g. 5 = 5 % of calls).' : '';
        thresholdErr.textContent = bad;
        thresholdErr.hidden = !bad;
        if (bad) return;
        saveBtn.disabled = true;
        const payload = JSON.parse(JSON.stringify(r));
        for (const k of ['id', 'status', 'created_at', 'updated_at']) delete payload[k];
        payload.condition.threshold = Number(payload.condition.threshold);
        if (payload.query.kind === 'metric') {
          payload.query.filters = Object.fromEntries(Object.entries(payload.query.filters || {}).filter(([, v]) => v));
          if (payload.query.metric === 'sla_breach_rate') payload.query.threshold_ms = Number(payload.query.threshold_ms) || 1000;
          else delete payload.query.threshold_ms;
        }
        payload.notify = payload.notify.filter((n) => n.url);
        try {
          const saved = id ? await api.put('/v1/alerts/' + encodeURIComponent(id), payload) : await api.post('/v1/alerts', payload);
          ui.busy = false;
          navigate('/alerts/' + (saved.id || id));
        } catch (e) {
          saveBtn.disabled = false;
          body.querySelector('.save-error')?.remove();
          body.prepend(h('div', { class: 'save-error' }, errorBox(e)));
        }
      });
      const q = r.query;
      clear(body).append(h('div', { 'data-testid': 'alert-form' },
        h('div', { class: 'detail-head' }, h('a', { href: link(id ? '/alerts/' + id : '/alerts') }, '← Back'), h('h2', {}, id ? 'Edit alert' : 'New alert')),
        card('Rule', h('div', {},
          h('div', { class: 'form' },
            f('Name', inp({ 'data-testid': 'alert-name-input', placeholder: 'e.g. Checkout error rate' }, () => r.name, (v) => { r.name = v; }), 'half'),
            f('Description', inp({ 'data-testid': 'alert-description-input' }, () => r.description, (v) => { r.description = v; }), 'half'),
            f('Query', kindSel),
            q.kind === 'sql' ? null : f('Metric', metricSel),
            q.kind !== 'sql' && q.metric === 'sla_breach_rate' ? f('SLA threshold (ms)', inp({ type: 'number', 'data-testid': 'alert-threshold-ms' }, () => q.threshold_ms, (v) => { q.threshold_ms = Number(v); })) : null,
            q.kind === 'sql' ? f('SQL — must answer one number; $from / $to are the evaluation window', inp({ tag: 'textarea', rows: 4, 'data-testid': 'alert-sql' }, () => q.sql, (v) => { q.sql = v; }), 'full') : null,
            ...(q.kind === 'sql' ? [] : ['model', 'provider', 'service', 'operation'].map((k) =>
              f('Filter: ' + k, inp({ placeholder: 'any', 'data-testid': 'alert-filter-' + k }, () => q.filters[k], (v) => { q.filters[k] = v; })))),
            f(rate ? 'Condition (threshold in % of calls)' : 'Condition', h('div', {},
              h('div', { class: 'search-row' },
                (() => { const s = select(OPS, r.condition.op, { 'data-testid': 'alert-op' }); s.addEventListener('change', () => { r.condition.op = s.value; }); return s; })(),
                // Rates are fractions 0–1 in the API; the user types a percentage (5 → 0.05).
                rate ? inp({ type: 'number', step: 'any', min: 0, max: 100, 'data-testid': 'alert-threshold', 'data-unit': 'percent', style: { width: '120px' } },
                  () => toPct(r.condition.threshold), (v) => { r.condition.threshold = v === '' ? '' : Number(v) / 100; })
                  : inp({ type: 'number', step: 'any', 'data-testid': 'alert-threshold', style: { width: '120px' } }, () => r.condition.threshold, (v) => { r.condition.threshold = v; }),
                rate ? h('span', { class: 'muted' }, '%') : null),
              rate ? h('div', { class: 'muted field-hint' }, '0–100 % of the calls in the window, e.g. 5 = 5 % (sent as 0.05).') : null,
              thresholdErr)),
            f('Window', inp({ 'data-testid': 'alert-window', placeholder: '5m' }, () => r.window, (v) => { r.window = v; })),
            f('For (pending before firing)', inp({ 'data-testid': 'alert-for', placeholder: '1m' }, () => r.for, (v) => { r.for = v; })),
            f('Evaluate every', inp({ 'data-testid': 'alert-every', placeholder: '30s' }, () => r.every, (v) => { r.every = v; })),
            f('Notify (webhooks)', notify, 'full'),
            h('label', { class: 'inline full' }, (() => { const c = h('input', { type: 'checkbox', checked: r.enabled !== false, 'data-testid': 'alert-enabled-input' }); c.addEventListener('change', () => { r.enabled = c.checked; }); return c; })(), 'Enabled')),
          h('div', { class: 'form-actions' }, h('a', { class: 'btn ghost', href: link(id ? '/alerts/' + id : '/alerts') }, 'Cancel'), saveBtn)))));
    };
    draw();
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(errorBox(e)); });
}
