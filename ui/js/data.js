/**
 * data.js — composite queries several pages share, all built on the explore API with the page's time range
 * and filters: per-group stats (latency + errors + tokens joined by group), filter values, timeseries helpers.
 */
import { api } from './api.js';
import { commonParams } from './state.js';

export const DIMENSIONS = [['model', 'Model'], ['provider', 'Provider'], ['service', 'Service'], ['operation', 'Operation']];

/** A timeseries answer's series as chart series for one field. */
export function seriesFor(ts, field, nameOf = (se) => se.group ?? 'all') {
  return ts.series.map((se) => ({ name: nameOf(se), points: se.points.map((p) => ({ t: p.t, v: p[field] ?? null })) }));
}

/** Several fields of the single (unsplit) series as separate lines. */
export function fieldsSeries(ts, fields, labels = {}) {
  const se = ts.series[0] || { points: [] };
  return fields.map((f) => ({ name: labels[f] || f, points: se.points.map((p) => ({ t: p.t, v: p[f] ?? null })) }));
}

export function timeseries(params = {}) {
  return api.get('/v1/explore/timeseries', { ...commonParams(), ...params });
}

/**
 * One row per group of `by` with calls, errors, error rate, latency and TTFT percentiles, tokens and cost:
 * latency, errors and tokens answers joined on the group value.
 */
export async function groupStats(by, extra = {}) {
  const p = { ...commonParams(), by, ...extra };
  const [lat, err, tok] = await Promise.all([
    api.get('/v1/explore/latency', p), api.get('/v1/explore/errors', p), api.get('/v1/explore/tokens', p),
  ]);
  const rows = new Map();
  const row = (g) => {
    const key = g.group ?? '(none)';
    if (!rows.has(key)) rows.set(key, { group: g.group, key });
    return rows.get(key);
  };
  for (const g of lat.groups || []) {
    Object.assign(row(g), {
      calls: g.calls, p50_ms: g.duration_ms?.p50 ?? null, p90_ms: g.duration_ms?.p90 ?? null, p99_ms: g.duration_ms?.p99 ?? null,
      ttft_p50_ms: g.ttft_ms?.p50 ?? null, ttft_p90_ms: g.ttft_ms?.p90 ?? null, streamed_calls: g.streamed_calls,
    });
  }
  for (const g of err.groups || []) Object.assign(row(g), { calls: g.calls, errors: g.errors, error_rate: g.error_rate, top_errors: g.top_errors });
  for (const g of tok.groups || []) {
    Object.assign(row(g), {
      calls: g.calls, input_tokens: g.totals?.input_tokens ?? null, output_tokens: g.totals?.output_tokens ?? null,
      cost_usd: g.cost_usd ?? null, mean_input: g.mean_per_call?.input_tokens ?? null, mean_output: g.mean_per_call?.output_tokens ?? null,
    });
  }
  return { by: lat.by, window: lat.window, rows: [...rows.values()].sort((a, b) => (b.calls || 0) - (a.calls || 0)) };
}

let dimCache = { key: '', at: 0, value: null };

/** Values for the filter pickers: /v1/explore/dimensions, or (older servers) models + services. */
export async function dimensionValues() {
  const p = commonParams();
  const key = JSON.stringify(p);
  if (dimCache.value && dimCache.key === key && Date.now() - dimCache.at < 60e3) return dimCache.value;
  let dims;
  try {
    dims = (await api.get('/v1/explore/dimensions', p)).dimensions;
  } catch (e) {
    if (e.status !== 404 && e.status !== 405) throw e;
    const [models, services] = await Promise.all([api.get('/v1/models', p), api.get('/v1/services', p)]);
    const count = (pairs) => {
      const m = new Map();
      for (const [v, c] of pairs) if (v) m.set(v, (m.get(v) || 0) + c);
      return [...m].map(([value, calls]) => ({ value, calls })).sort((a, b) => b.calls - a.calls);
    };
    dims = {
      model: count(models.models.map((m) => [m.request_model, m.calls])),
      provider: count(models.models.map((m) => [m.provider, m.calls])),
      service: count(services.edges.map((e) => [e.source, e.calls])),
      operation: [],
    };
  }
  dimCache = { key, at: Date.now(), value: dims };
  return dims;
}

/** Replace $from / $to in dashboard / alert SQL with the page range as quoted RFC 3339 literals. */
export function bindSql(sql, range) {
  const iso = (d) => `'${d.toISOString().replace(/\.\d{3}Z$/, 'Z')}'`;
  return sql.replace(/\$from\b/g, iso(range.from)).replace(/\$to\b/g, iso(range.to));
}
