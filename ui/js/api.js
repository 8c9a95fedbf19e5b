/**
 * api.js — every call to the Lumen HTTP API goes through here: builds query strings (dropping empty values),
 * sends the bearer token kept in localStorage, and turns error answers (`{"error": "..."}`) into ApiError.
 * A 401 also fires the `lumen:unauthorized` window event so the shell can ask for a token.
 * Reads (GETs and POST /v1/sql) are retried on 429 (query slots busy) and carry the current render's abort
 * signal (`setRenderSignal`), so a new route or refresh cancels what the previous render still waits for.
 */

const TOKEN_KEY = 'lumen.token';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage may be disabled: the token then lives only for this page */ }
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

const RETRIES_429 = 3; // attempts in all
const RETRY_CAP_MS = 3000;
let renderSignal = null;

/** The shell sets this to the current render generation's AbortController signal. */
export function setRenderSignal(signal) {
  renderSignal = signal;
}

/** True for the error a request throws when its render was cancelled: never worth showing. */
export function isAbort(e) {
  return !!(e && (e.aborted || e.name === 'AbortError'));
}

function aborted() {
  const e = new ApiError(0, 'request cancelled');
  e.aborted = true;
  return e;
}

/** Retry-After in ms (seconds or an HTTP date), capped; 1 s when missing or unreadable. */
function retryAfterMs(resp) {
  const v = resp.headers.get('Retry-After');
  let ms = 1000;
  if (v && /^\d+(\.\d+)?$/.test(v.trim())) ms = Number(v) * 1000;
  else if (v && !Number.isNaN(Date.parse(v))) ms = Date.parse(v) - Date.now();
  return Math.min(Math.max(ms, 0), RETRY_CAP_MS);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) { reject(aborted()); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(aborted()); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function request(method, path, { params, body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Writes are never cancelled or repeated: only reads.
  const isRead = method === 'GET' || (method === 'POST' && path === '/v1/sql');
  const sig = signal !== undefined ? signal : isRead ? renderSignal : null;
  let resp;
  for (let attempt = 1; ; attempt++) {
    if (sig && sig.aborted) throw aborted();
    try {
      resp = await fetch(path + qs(params), { method, headers, signal: sig || undefined, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      if (isAbort(e) || (sig && sig.aborted)) throw aborted();
      throw new ApiError(0, 'network error: ' + e.message);
    }
    if (resp.status !== 429 || !isRead || attempt >= RETRIES_429) break;
    await sleep(retryAfterMs(resp), sig);
  }
  if (resp.status === 204) return null;
  let text;
  try { text = await resp.text(); } catch (e) {
    if (isAbort(e) || (sig && sig.aborted)) throw aborted();
    throw new ApiError(0, 'network error: ' + e.message);
  }
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    if (resp.status === 401) window.dispatchEvent(new CustomEvent('lumen:unauthorized', { detail: { token } }));
    const msg = (data && (data.error || data.message)) || text || resp.statusText;
    throw new ApiError(resp.status, `${resp.status}: ${msg}`, data);
  }
  if (data === null && text) throw new ApiError(resp.status, 'answer is not JSON: ' + text.slice(0, 200));
  return data;
}

export const api = {
  get: (path, params) => request('GET', path, { params }),
  post: (path, body, params) => request('POST', path, { body, params }),
  put: (path, body) => request('PUT', path, { body }),
  del: (path) => request('DELETE', path),
  sql: (sql) => request('POST', '/v1/sql', { body: { sql, format: 'json' } }),
};
