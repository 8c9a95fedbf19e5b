/**
 * format.js — how numbers, durations, money, tokens, rates and times are written everywhere in the UI.
 * `fmtField(field, v)` picks the right formatter from a metric's name (p90_ms → duration, cost_usd → money…).
 */

const DASH = '—';

function trim(x, digits) {
  return Number(x.toFixed(digits)).toString();
}

/** 950 → "950", 1234 → "1.2k", 3_400_000 → "3.4M". */
export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return trim(n / 1e9, 1) + 'B';
  if (a >= 1e6) return trim(n / 1e6, 1) + 'M';
  if (a >= 1e4) return trim(n / 1e3, 0) + 'k';
  if (a >= 1e3) return trim(n / 1e3, 1) + 'k';
  if (Number.isInteger(n)) return String(n);
  return a >= 100 ? trim(n, 0) : a >= 1 ? trim(n, 2) : trim(n, 3);
}

/** Exact integer with thousands separators (for tiles that must be comparable to the API). */
export function fmtInt(n) {
  if (n === null || n === undefined) return DASH;
  return Math.round(n).toLocaleString('en-US');
}

export function fmtTokens(n) {
  return n === null || n === undefined ? DASH : fmtNum(n);
}

export function fmtCost(usd) {
  if (usd === null || usd === undefined || Number.isNaN(usd)) return DASH;
  const a = Math.abs(usd);
  if (a === 0) return '$0';
  if (a < 0.01) return '$' + usd.toPrecision(2);
  if (a >= 1e6) return '$' + trim(usd / 1e6, 2) + 'M';
  if (a >= 1e4) return '$' + trim(usd / 1e3, 1) + 'k';
  return '$' + usd.toFixed(2);
}

/** 850 → "850 ms", 1234 → "1.23 s", 95000 → "1.6 min". */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return DASH;
  const a = Math.abs(ms);
  if (a < 1) return trim(ms, 2) + ' ms';
  if (a < 1000) return Math.round(ms) + ' ms';
  if (a < 10000) return trim(ms / 1000, 2) + ' s';
  if (a < 60000) return trim(ms / 1000, 1) + ' s';
  if (a < 3600000) return trim(ms / 60000, 1) + ' min';
  return trim(ms / 3600000, 1) + ' h';
}

/** A 0..1 rate as a percentage. */
export function fmtPct(r) {
  if (r === null || r === undefined || Number.isNaN(r)) return DASH;
  const p = r * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) < 0.1) return '<0.1%';
  return (Math.abs(p) < 10 ? trim(p, 2) : trim(p, 1)) + '%';
}

/** Formatter for a metric by its field name. */
export function formatterFor(field) {
  const f = String(field || '');
  if (f.endsWith('_ms') || f === 'duration' || f === 'ttft') return fmtMs;
  if (/(^|_)(rate|share|ratio)$/.test(f) || f.startsWith('share')) return fmtPct;
  if (f.includes('cost') || f.endsWith('_usd')) return fmtCost;
  if (f.includes('token')) return fmtTokens;
  return fmtNum;
}

export function fmtField(field, v) {
  return formatterFor(field)(v);
}

const pad = (n) => String(n).padStart(2, '0');

/** Local time: "14:03:07" today, "Nov 27 14:03" otherwise. */
export function fmtTime(t, withSeconds = true) {
  if (!t) return DASH;
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const now = new Date();
  const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + (withSeconds ? ':' + pad(d.getSeconds()) : '');
  if (d.toDateString() === now.toDateString()) return hms;
  return d.toLocaleString('en-US', { month: 'short', day: 'numeric' }) + ' ' + hms;
}

export function fmtDateTime(t) {
  if (!t) return DASH;
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago" style. */
export function fmtAgo(t) {
  if (!t) return DASH;
  const d = new Date(t);
  const s = (Date.now() - d.getTime()) / 1000;
  if (Number.isNaN(s)) return String(t);
  if (s < 0) return 'in ' + fmtMs(-s * 1000);
  if (s < 60) return Math.round(s) + 's ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return trim(s / 3600, 1) + ' h ago';
  return trim(s / 86400, 1) + ' d ago';
}

/** A human label for a metric field name. */
export function fieldLabel(field) {
  const map = {
    calls: 'Calls', errors: 'Errors', error_rate: 'Error rate', p50_ms: 'P50', p90_ms: 'P90', p99_ms: 'P99',
    ttft_p50_ms: 'TTFT P50', ttft_p90_ms: 'TTFT P90', ttft_p99_ms: 'TTFT P99', input_tokens: 'Input tokens',
    output_tokens: 'Output tokens', cost_usd: 'Cost', sla_breach_rate: 'SLA breach rate',
  };
  return map[field] || String(field).replace(/_/g, ' ');
}
