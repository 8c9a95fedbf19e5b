/**
 * state.js — the URL hash is the single source of truth for what is on screen:
 *   #/<page>/<sub>?range=1h&model=gpt-4o&service=api&...&<page-specific keys>
 * This module parses it, builds links that keep the global time range + filters, and turns the range into
 * API parameters (relative `-1h`/`now`) or absolute dates (for SQL `$from`/`$to` and chart axes).
 */

export const RANGES = [
  ['15m', 'Last 15 minutes', 15 * 60e3], ['1h', 'Last 1 hour', 3600e3], ['6h', 'Last 6 hours', 6 * 3600e3],
  ['24h', 'Last 24 hours', 24 * 3600e3], ['7d', 'Last 7 days', 7 * 86400e3], ['30d', 'Last 30 days', 30 * 86400e3],
];
export const DEFAULT_RANGE = '24h';
/** Pages set `ui.busy` while a form is being edited so auto-refresh does not wipe it. */
export const ui = { busy: false };
export const FILTER_KEYS = ['provider', 'model', 'service', 'operation', 'status'];
/** Keys that travel with every link: the time range, the filters and auto-refresh. */
export const GLOBAL_KEYS = ['range', 'from', 'to', ...FILTER_KEYS, 'refresh'];

/** decodeURIComponent that keeps the raw text when the %-escape is malformed (a hand-edited hash). */
function decodeSafe(text) {
  try { return decodeURIComponent(text); } catch (e) {
    if (e instanceof URIError) return text;
    throw e;
  }
}

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const [pathPart, query = ''] = raw.split('?');
  const segments = pathPart.split('/').filter(Boolean).map(decodeSafe);
  const params = Object.fromEntries(new URLSearchParams(query));
  return { segments, params };
}

export function buildHash(segments, params) {
  const path = '#/' + segments.map(encodeURIComponent).join('/');
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return path + (qs ? '?' + qs : '');
}

export function current() {
  return parseHash();
}

/** The global part of the current params. */
export function globalParams(params = current().params) {
  const out = {};
  for (const k of GLOBAL_KEYS) if (params[k]) out[k] = params[k];
  return out;
}

/** A link to `path` ("/traces/abc") keeping range and filters, plus `extra` page params. */
export function link(path, extra = {}, params = current().params) {
  const segments = path.split('/').filter(Boolean);
  return buildHash(segments, { ...globalParams(params), ...extra });
}

export function navigate(path, extra = {}) {
  location.hash = link(path, extra);
}

/** Merge `changes` into the current hash (null removes a key). */
export function setParams(changes, { replace = false } = {}) {
  const { segments, params } = current();
  const next = { ...params };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') delete next[k]; else next[k] = String(v);
  }
  const h = buildHash(segments, next);
  if (replace) history.replaceState(null, '', h); else location.hash = h;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function rangeKey(params = current().params) {
  if (params.from || params.to) return 'custom';
  return RANGES.some((r) => r[0] === params.range) ? params.range : DEFAULT_RANGE;
}

/** from/to as the API takes them. */
export function timeParams(params = current().params) {
  if (rangeKey(params) === 'custom') return { from: params.from || '-24h', to: params.to || 'now' };
  return { from: '-' + rangeKey(params), to: 'now' };
}

/** Parse one of the API's time forms (now, -1h, RFC 3339, unix ns) into a Date. */
export function parseTime(v, now = Date.now()) {
  if (!v || v === 'now') return new Date(now);
  const rel = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(v);
  if (rel) {
    const mult = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[rel[2]];
    return new Date(now - Number(rel[1]) * mult);
  }
  if (/^\d{15,}$/.test(v)) return new Date(Number(BigInt(v) / 1000000n));
  return new Date(v);
}

/** The range as absolute dates, fixed at the time of the call. */
export function absRange(params = current().params) {
  const now = Date.now();
  const { from, to } = timeParams(params);
  return { from: parseTime(from, now), to: parseTime(to, now) };
}

/** Active filters as API params. */
export function filterParams(params = current().params) {
  const out = {};
  for (const k of FILTER_KEYS) if (params[k]) out[k] = params[k];
  return out;
}

/** Everything an explore endpoint needs from the page state: time range + filters. */
export function commonParams(params = current().params) {
  return { ...timeParams(params), ...filterParams(params) };
}
