/**
 * panels.js — draws one dashboard panel: runs its query (an explore endpoint with the page's range and
 * filters under the panel's own params, or SQL with $from/$to bound to the page range) and turns the answer
 * into the panel's chart (line, bar, table, stat, histogram) for the panel's field(s).
 */
import { h, clear } from './dom.js';
import { lineChart, barChart, histogram, dataTable, statTile, errorBox, loading, emptyState, colorAt } from './charts.js';
import { formatterFor, fieldLabel } from './format.js';
import { api, isAbort } from './api.js';
import { commonParams, absRange } from './state.js';
import { bindSql } from './data.js';

export const ENDPOINTS = ['timeseries', 'latency', 'tokens', 'errors', 'histogram', 'models', 'services', 'sla'];
export const CHART_KINDS = ['line', 'bar', 'table', 'stat', 'histogram'];
const ADDITIVE = /^(calls|errors|input_tokens|output_tokens|cost_usd|over|cache_read_tokens|reasoning_tokens)$/;

export function endpointPath(endpoint) {
  if (endpoint === 'models' || endpoint === 'services') return '/v1/' + endpoint;
  return '/v1/explore/' + endpoint;
}

function fieldsOf(panel, fallback) {
  const f = String(panel.field || '').split(',').map((x) => x.trim()).filter(Boolean);
  return f.length ? f : fallback;
}

/** Flatten a latency / tokens / errors group (or a latency series point) into plain metric fields. */
export function flatten(g) {
  const o = { group: g.group, calls: g.calls, t: g.t };
  for (const [src, pre] of [['duration_ms', ''], ['ttft_ms', 'ttft_']]) {
    if (g[src] && typeof g[src] === 'object') for (const [q, v] of Object.entries(g[src])) o[`${pre}${q}_ms`] = v;
  }
  if (g.totals) Object.assign(o, g.totals);
  if (g.mean_per_call) for (const [k, v] of Object.entries(g.mean_per_call)) o['mean_' + k] = v;
  for (const k of ['errors', 'error_rate', 'cost_usd', 'priced_calls', 'streamed_calls', 'over', 'breach_rate', 'share_of_breaches']) if (g[k] !== undefined) o[k] = g[k];
  return o;
}

/** Rows the bar / table / stat charts work on: [{label, ...fields}] plus the default fields. */
function rowsOf(endpoint, d, panel) {
  switch (endpoint) {
    case 'latency': return { rows: d.groups.map((g) => ({ label: g.group ?? '(none)', ...flatten(g) })), def: ['p90_ms'] };
    case 'tokens': return { rows: d.groups.map((g) => ({ label: g.group ?? '(none)', ...flatten(g) })), def: ['cost_usd'] };
    case 'errors': return { rows: d.groups.map((g) => ({ label: g.group ?? '(none)', ...flatten(g) })), def: ['error_rate'] };
    case 'models': return { rows: d.models.map((m) => ({ label: m.request_model + (m.response_model && m.response_model !== m.request_model ? ' → ' + m.response_model : ''), ...m, services: (m.services || []).length })), def: ['calls'] };
    case 'services': return { rows: d.edges.map((e) => ({ label: `${e.source} → ${e.target}`, ...e })), def: ['calls'] };
    case 'sla': {
      const key = (panel.params && panel.params.breakdown) || 'model';
      if (d.breakdown && d.breakdown[key]) return { rows: d.breakdown[key].map((r) => ({ label: String(r.value ?? '(none)'), ...r })), def: ['breach_rate'], total: d };
      return { rows: [], def: ['share'], total: d };
    }
    case 'timeseries': return {
      rows: d.series.map((se) => {
        const r = { label: se.group ?? (d.split ? '(none)' : 'all'), calls: se.calls };
        for (const p of se.points) for (const [k, v] of Object.entries(p)) if (ADDITIVE.test(k) && k !== 'calls' && typeof v === 'number') r[k] = (r[k] || 0) + v;
        return r;
      }), def: ['calls'], total: d.total };
    default: return { rows: [], def: [] };
  }
}

function lineSeries(endpoint, d, fields) {
  if (endpoint === 'timeseries') {
    const split = d.series.length > 1 || (d.series[0] && d.series[0].group !== null);
    return d.series.flatMap((se) => fields.map((f) => ({
      name: split ? (fields.length > 1 ? `${se.group ?? '(none)'} · ${fieldLabel(f)}` : se.group ?? '(none)') : fieldLabel(f),
      points: se.points.map((p) => ({ t: p.t, v: p[f] ?? null })),
    })));
  }
  if (endpoint === 'latency' && d.groups.some((g) => g.series)) {
    return d.groups.flatMap((g) => fields.map((f) => ({
      name: fields.length > 1 ? `${g.group ?? '(none)'} · ${fieldLabel(f)}` : g.group ?? '(none)',
      points: (g.series || []).map((p) => { const fl = flatten(p); return { t: p.t, v: fl[f] ?? null }; }),
    })));
  }
  return null;
}

function drawRows(chart, rows, fields, total) {
  if (chart === 'stat') {
    return h('div', { class: 'tiles', style: { marginBottom: 0 } }, fields.map((f) => {
      let v;
      if (total && total[f] !== undefined) v = total[f];
      else if (ADDITIVE.test(f)) v = rows.reduce((a, r) => a + (r[f] || 0), 0);
      else v = rows.length ? rows[0][f] : null;
      return statTile(fieldLabel(f), v, formatterFor(f), { testid: 'panel-stat' });
    }));
  }
  if (chart === 'table') {
    return dataTable([{ key: 'label', label: 'Group' }, ...fields.map((f) => ({ key: f, label: fieldLabel(f), align: 'right', format: formatterFor(f) }))],
      rows, { sort: { key: fields[0], dir: 'desc' }, testid: 'panel-table' });
  }
  // bar (and the fallback for line/histogram on data that has no time axis)
  const charts = fields.map((f, i) => {
    const items = rows.filter((r) => typeof r[f] === 'number').sort((a, b) => b[f] - a[f]).slice(0, 20)
      .map((r) => ({ label: r.label, value: r[f] }));
    const bc = barChart(items, { format: formatterFor(f), color: colorAt(i) });
    return fields.length > 1 ? h('div', {}, h('div', { class: 'muted', style: { margin: '4px 0' } }, fieldLabel(f)), bc) : bc;
  });
  return h('div', {}, charts);
}

function renderExplore(panel, d, range) {
  const endpoint = panel.endpoint || 'timeseries';
  const chart = panel.chart || 'line';
  if (endpoint === 'histogram' || (chart === 'histogram' && d.boundaries)) {
    if (chart === 'table') {
      const rows = (d.boundaries || []).concat([Infinity]).map((b, i) => ({ label: b === Infinity ? '> ' + d.boundaries[d.boundaries.length - 1] : '≤ ' + b, ...Object.fromEntries(d.groups.map((g) => [g.group ?? 'calls', g.counts[i]])) }));
      return drawRows('table', rows, d.groups.map((g) => g.group ?? 'calls'));
    }
    return histogram(d.boundaries, d.groups, { format: formatterFor(d.metric || 'duration_ms'), xLabel: d.metric });
  }
  const { rows, def, total } = rowsOf(endpoint, d, panel);
  const fields = fieldsOf(panel, def);
  if (chart === 'line') {
    const series = lineSeries(endpoint, d, fields);
    if (series) return lineChart(series, { format: formatterFor(fields[0]), xDomain: d.window ? [d.window.from, d.window.to] : [range.from, range.to], legend: series.length > 1 });
  }
  if (chart === 'stat' && endpoint === 'sla') {
    const tf = fieldsOf(panel, ['share']);
    return h('div', { class: 'tiles', style: { marginBottom: 0 } }, tf.map((f) => statTile(fieldLabel(f), d[f], f === 'share' ? formatterFor('share') : formatterFor(f), { testid: 'panel-stat' })));
  }
  return drawRows(chart === 'line' || chart === 'histogram' ? 'bar' : chart, rows, fields, total);
}

const SQL_TABLE_ROWS = 50; // SQL tables show the first rows only: a panel is a summary, not a result browser
const SQL_CHART_POINTS = 2000; // and SQL charts draw at most this many points

const TIME_NAMES = /^(t|ts|time|timestamp|minute|hour|day|bucket|start_time|window_start)$/i;

function renderSql(panel, d) {
  const cols = d.columns || [];
  const rows = (d.rows || []).map((r) => Object.fromEntries(cols.map((c, i) => [c.name, r[i]])));
  if (!rows.length) return emptyState('The query returned no rows');
  const isNum = (c) => /int|float|decimal|double/i.test(c.type || '') || (!c.type && typeof rows[0][c.name] === 'number');
  const timeCol = cols.find((c) => /timestamp|date/i.test(c.type || '') || TIME_NAMES.test(c.name));
  const strCol = cols.find((c) => c !== timeCol && !isNum(c));
  const numeric = cols.filter((c) => c !== timeCol && isNum(c)).map((c) => c.name);
  // Field(s) that name no column of this result (e.g. a new panel's default "calls"): chart every number.
  let fields = fieldsOf(panel, numeric).filter((f) => cols.some((c) => c.name === f));
  if (!fields.length) fields = numeric;
  const chart = panel.chart || 'table';
  const notes = (...extra) => {
    const parts = [...extra, d.truncated ? 'Result truncated at the server row cap.' : null].filter(Boolean);
    return parts.length ? h('div', { class: 'sql-result-note', 'data-testid': 'sql-result-note' }, parts.join(' ')) : null;
  };
  // Charts: at most SQL_CHART_POINTS points in all (rows × fields), in result order.
  const chartRows = rows.slice(0, Math.max(1, Math.floor(SQL_CHART_POINTS / Math.max(fields.length, 1))));
  const chartNote = chartRows.length < rows.length ? `Charted the first ${chartRows.length} of ${rows.length} rows.` : null;
  if (chart === 'line' && timeCol && fields.length) {
    const groups = new Map();
    for (const r of chartRows) {
      for (const f of fields) {
        const name = strCol ? (fields.length > 1 ? `${r[strCol.name]} · ${f}` : String(r[strCol.name])) : f;
        if (!groups.has(name)) groups.set(name, []);
        groups.get(name).push({ t: r[timeCol.name], v: typeof r[f] === 'number' ? r[f] : r[f] === null ? null : Number(r[f]) });
      }
    }
    const series = [...groups].map(([name, points]) => ({ name, points: points.sort((a, b) => new Date(a.t) - new Date(b.t)) }));
    return h('div', {}, lineChart(series, { format: formatterFor(fields[0]), legend: series.length > 1 }), notes(chartNote));
  }
  if (chart === 'table' || !fields.length) {
    const shown = rows.slice(0, SQL_TABLE_ROWS);
    const tableNote = shown.length < rows.length ? `Showing the first ${shown.length} of ${rows.length} rows.` : null;
    return h('div', {}, dataTable(cols.map((c) => ({
      key: c.name, label: c.name, align: isNum(c) ? 'right' : null,
      format: isNum(c) ? (v) => (typeof v === 'number' ? formatterFor(c.name)(v) : v ?? '—') : (v) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v)),
    })), shown, { testid: 'panel-table' }), notes(tableNote));
  }
  const labelCol = strCol || timeCol;
  const labeled = chartRows.map((r, i) => ({ label: labelCol ? String(r[labelCol.name]) : String(i + 1), ...r }));
  return h('div', {}, drawRows(chart === 'line' || chart === 'histogram' ? 'bar' : chart, labeled, fields, chart === 'stat' ? rows[0] : null),
    chart === 'stat' ? notes() : notes(chartNote));
}

/** Run and draw `panel` into `el`. Returns a promise that settles when drawn. */
export async function renderPanel(el, panel, isCurrent = () => true) {
  // The editor re-runs a panel as it is edited: only the latest run may draw into `el`.
  const run = (el.lumenPanelRun = (el.lumenPanelRun || 0) + 1);
  const latest = () => isCurrent() && el.lumenPanelRun === run;
  clear(el).append(loading());
  const range = absRange();
  try {
    let node;
    if (panel.kind === 'sql') {
      if (!panel.sql || !panel.sql.trim()) throw new Error('this panel has no SQL yet');
      const d = await api.sql(bindSql(panel.sql, range));
      node = renderSql(panel, d);
    } else {
      const endpoint = panel.endpoint || 'timeseries';
      if (!ENDPOINTS.includes(endpoint)) throw new Error('unknown endpoint ' + endpoint);
      // `breakdown` picks which SLA breakdown to chart: a UI choice, never sent to the API.
      const params = { ...(panel.params || {}) };
      delete params.breakdown;
      const d = await api.get(endpointPath(endpoint), { ...commonParams(), ...params });
      node = renderExplore(panel, d, range);
    }
    if (latest()) clear(el).append(node);
  } catch (e) {
    if (latest() && !isAbort(e)) clear(el).append(errorBox(e));
  }
}
