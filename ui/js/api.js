/**
 * api.js — every call to the Lumen HTTP API goes through here: builds query strings (dropping empty values),
 * sends the bearer token kept in localStorage, and turns error answers (`{"error": "..."}`) into ApiError.
 * A 401 also fires the `lumen:unauthorized` window event so the shell can ask for a token.
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

async function request(method, path, { params, body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path + qs(params), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network error: ' + e.message);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    if (resp.status === 401) window.dispatchEvent(new CustomEvent('lumen:unauthorized'));
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
