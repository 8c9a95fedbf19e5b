/**
 * app.js — the shell: left navigation, the top bar (time range picker, filter chips, auto-refresh), the bearer
 * token prompt, and the hash router that hands `#/<page>/...` to the page modules. Each page module exports
 * `render(root, ctx)`; ctx carries the route segments and params. A new route or refresh bumps `generation`
 * and aborts the previous generation's AbortController, so its pending requests are cancelled and answers
 * for a page the user already left are dropped.
 */
import { h, clear, select } from './dom.js';
import { RANGES, FILTER_KEYS, current, rangeKey, setParams, link, ui } from './state.js';
import { getToken, setToken, setRenderSignal, isAbort } from './api.js';
import { dimensionValues } from './data.js';
import { errorBox } from './charts.js';
import * as overview from './pages/overview.js';
import * as models from './pages/models.js';
import * as explore from './pages/explore.js';
import * as sla from './pages/sla.js';
import * as traces from './pages/traces.js';
import * as map from './pages/map.js';
import * as dashboards from './pages/dashboards.js';
import * as alerts from './pages/alerts.js';

const PAGES = [
  { id: '', label: 'Overview', mod: overview, icon: 'M2 13h3V7H2zm4.5 0h3V3h-3zM11 13h3V9h-3z' },
  { id: 'models', label: 'Models', mod: models, icon: 'M8 1.5 14 5v6l-6 3.5L2 11V5zm0 2L4 5.7l4 2.3 4-2.3z' },
  { id: 'explore', label: 'Explore', mod: explore, icon: 'M7 2a5 5 0 1 0 2.9 9.1l3.5 3.5 1.1-1.1-3.5-3.5A5 5 0 0 0 7 2m0 1.6a3.4 3.4 0 1 1 0 6.8 3.4 3.4 0 0 1 0-6.8' },
  { id: 'sla', label: 'SLA', mod: sla, icon: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13m0 1.6a4.9 4.9 0 1 1 0 9.8 4.9 4.9 0 0 1 0-9.8M7.3 4.5v4l3 1.8.7-1.2-2.3-1.4V4.5z' },
  { id: 'traces', label: 'Traces', mod: traces, icon: 'M2 3h12v1.6H2zm2 4.2h10v1.6H4zm-2 4.2h9V13H2z' },
  { id: 'map', label: 'Service map', mod: map, icon: 'M3.5 2a2 2 0 1 0 0 4 2 2 0 0 0 0-4m9 4a2 2 0 1 0 0 4 2 2 0 0 0 0-4m-9 4a2 2 0 1 0 0 4 2 2 0 0 0 0-4M5 4.5l6 3-.6 1.1-6-3zm0 7 6-3 .6 1.1-6 3z' },
  { id: 'dashboards', label: 'Dashboards', mod: dashboards, icon: 'M2 2h5.5v6H2zm6.5 0H14v3.5H8.5zM2 9h5.5v5H2zm6.5-2.5H14V14H8.5z' },
  { id: 'alerts', label: 'Alerts', mod: alerts, icon: 'M8 1.5a4.5 4.5 0 0 0-4.5 4.5v3L2 11.5V12.5h12v-1L12.5 9V6A4.5 4.5 0 0 0 8 1.5M6.3 13.5a1.8 1.8 0 0 0 3.4 0z' },
];

const REFRESH = [['', 'Auto-refresh off'], ['30s', 'Every 30s'], ['1m', 'Every 1m']];
let generation = 0;
let refreshTimer = null;
let controller = null; // the current generation's AbortController

function pageFor(segments) {
  return PAGES.find((p) => p.id === (segments[0] || '')) || null;
}

function icon(d) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16'); svg.setAttribute('class', 'nav-icon');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d); path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

function renderNav(segments) {
  const nav = clear(document.getElementById('nav'));
  const active = pageFor(segments);
  for (const p of PAGES) {
    nav.append(h('a', { href: link('/' + p.id), class: ['nav-link', active === p && 'active'], 'aria-current': active === p ? 'page' : null, 'data-testid': 'nav-' + (p.id || 'overview') },
      icon(p.icon), p.label));
  }
}

function toLocalInput(v) {
  const d = new Date(v);
  if (!v || Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function renderTopbar() {
  const { params } = current();
  const bar = clear(document.getElementById('topbar'));
  const rk = rangeKey(params);
  const rangeSel = select([...RANGES.map((r) => [r[0], r[1]]), ['custom', 'Custom range…']], rk, { 'data-testid': 'time-range', 'aria-label': 'time range' });
  const custom = h('div', { class: 'custom-range', hidden: rk !== 'custom', 'data-testid': 'custom-range' });
  const fromIn = h('input', { type: 'datetime-local', value: toLocalInput(params.from), 'data-testid': 'custom-from' });
  const toIn = h('input', { type: 'datetime-local', value: toLocalInput(params.to), 'data-testid': 'custom-to' });
  custom.append(fromIn, h('span', { class: 'muted' }, '→'), toIn,
    h('button', { class: 'btn small', 'data-testid': 'custom-apply', onClick: () => {
      const f = fromIn.value ? new Date(fromIn.value).toISOString() : null;
      const t = toIn.value ? new Date(toIn.value).toISOString() : null;
      if (f) setParams({ range: null, from: f, to: t });
    } }, 'Apply'));
  rangeSel.addEventListener('change', () => {
    if (rangeSel.value === 'custom') {
      custom.hidden = false;
      if (!fromIn.value) {
        const now = new Date();
        fromIn.value = toLocalInput(new Date(now - 3600e3)); toIn.value = toLocalInput(now);
      }
    } else setParams({ range: rangeSel.value, from: null, to: null });
  });

  const chips = h('div', { class: 'chips', 'data-testid': 'filter-chips' });
  for (const k of FILTER_KEYS) {
    if (!params[k]) continue;
    chips.append(h('span', { class: 'chip', 'data-testid': 'filter-chip-' + k },
      h('span', { class: 'chip-key' }, k), h('span', { class: 'chip-val' }, params[k]),
      h('button', { class: 'chip-x', title: 'remove filter', 'data-testid': 'filter-remove-' + k, onClick: () => setParams({ [k]: null }) }, '×')));
  }
  const addBtn = h('button', { class: 'btn ghost small', 'data-testid': 'filter-add' }, '+ Filter');
  addBtn.addEventListener('click', (ev) => { ev.stopPropagation(); openFilterPopover(addBtn); });
  chips.append(addBtn);

  const refreshSel = select(REFRESH, params.refresh || '', { 'data-testid': 'refresh-select', 'aria-label': 'auto refresh' });
  refreshSel.addEventListener('change', () => setParams({ refresh: refreshSel.value || null }));
  const reload = h('button', { class: 'btn ghost small', title: 'refresh now', 'data-testid': 'refresh-now', onClick: () => route(true) }, '↻');
  bar.append(h('div', { class: 'topbar-left' }, h('h1', { class: 'page-title', id: 'page-title' }, pageFor(current().segments)?.label || ''), chips),
    h('div', { class: 'topbar-right' }, custom, rangeSel, refreshSel, reload));
}

function openFilterPopover(anchor) {
  document.querySelector('.popover')?.remove();
  const dimSel = select(FILTER_KEYS.map((k) => [k, k]), 'model', { 'data-testid': 'filter-dim' });
  const valIn = h('input', { type: 'text', list: 'filter-values', placeholder: 'value', 'data-testid': 'filter-value', autocomplete: 'off' });
  const list = h('datalist', { id: 'filter-values' });
  const hint = h('div', { class: 'popover-hint muted' });
  const fill = async () => {
    clear(list);
    const dim = dimSel.value;
    if (dim === 'status') { for (const v of ['ok', 'error', '2xx', '4xx', '5xx']) list.append(h('option', { value: v })); return; }
    try {
      const dims = await dimensionValues();
      for (const d of (dims[dim] || []).slice(0, 200)) list.append(h('option', { value: d.value }, `${d.calls} calls`));
      hint.textContent = (dims[dim] || []).length ? '' : 'no values in this range';
    } catch (e) { if (!isAbort(e)) hint.textContent = e.message; }
  };
  dimSel.addEventListener('change', fill);
  const apply = () => { if (valIn.value.trim()) { pop.remove(); setParams({ [dimSel.value]: valIn.value.trim() }); } };
  valIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); if (e.key === 'Escape') pop.remove(); });
  const pop = h('div', { class: 'popover', 'data-testid': 'filter-popover', onClick: (e) => e.stopPropagation() },
    h('div', { class: 'popover-row' }, dimSel, valIn, list), hint,
    h('div', { class: 'popover-row end' }, h('button', { class: 'btn small ghost', onClick: () => pop.remove() }, 'Cancel'),
      h('button', { class: 'btn small primary', 'data-testid': 'filter-apply', onClick: apply }, 'Add filter')));
  const r = anchor.getBoundingClientRect();
  pop.style.left = r.left + 'px';
  pop.style.top = r.bottom + 6 + 'px';
  document.body.append(pop);
  setTimeout(() => document.addEventListener('click', () => pop.remove(), { once: true }));
  fill();
  valIn.focus();
}

function showAuth(ev) {
  // A 401 for a request sent with an older token (answered after the user saved a new one) is stale.
  if (ev && ev.detail && ev.detail.token !== undefined && ev.detail.token !== getToken()) return;
  const box = document.getElementById('auth');
  // Already asking: keep what the user is typing (a refresh can bring more 401s).
  if (!box.hidden && box.querySelector('[data-testid=token-input]')) return;
  clear(box);
  box.hidden = false;
  const input = h('input', { type: 'password', placeholder: 'paste the bearer token', value: getToken(), 'data-testid': 'token-input', autocomplete: 'off' });
  // A full re-render (not a refresh): runs even while the previous render is still waiting, and aborts it.
  const save = () => { setToken(input.value.trim()); clear(box); box.hidden = true; route(); };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(); });
  box.append(h('div', { class: 'auth-box', 'data-testid': 'auth-box' },
    h('div', {}, h('strong', {}, 'This server needs a token. '), h('span', { class: 'muted' }, 'It is kept in this browser (localStorage) and sent as Authorization: Bearer on every API call.')),
    h('div', { class: 'popover-row' }, input, h('button', { class: 'btn primary small', 'data-testid': 'token-save', onClick: save }, 'Save token'),
      getToken() ? h('button', { class: 'btn ghost small', onClick: () => { setToken(''); input.value = ''; } }, 'Forget') : null)));
}

function scheduleRefresh() {
  clearInterval(refreshTimer);
  const v = current().params.refresh;
  const ms = v === '30s' ? 30e3 : v === '1m' ? 60e3 : 0;
  if (ms) refreshTimer = setInterval(() => { if (!ui.busy && !document.hidden) route(true); }, ms);
}

let lastRouteKey = '';

/** Render the page for the current hash. `refresh` re-renders in place (same route, new data). */
export function route(refresh = false) {
  if (refresh && ui.busy) return; // a form is open: a refresh would throw the user's edits away
  const { segments, params } = current();
  const page = pageFor(segments);
  const gen = ++generation;
  if (controller) controller.abort();
  controller = new AbortController();
  setRenderSignal(controller.signal);
  renderNav(segments);
  renderTopbar();
  const key = location.hash;
  if (!refresh && key !== lastRouteKey) ui.busy = false;
  lastRouteKey = key;
  const root = document.getElementById('page');
  if (!page) {
    clear(root).append(errorBox({ message: 'No such page: #/' + segments.join('/') }));
    return;
  }
  document.title = page.label + ' · Lumen';
  const ctx = {
    segments, params, refresh, signal: controller.signal,
    isCurrent: () => gen === generation,
  };
  if (!refresh) { clear(root); window.scrollTo(0, 0); } else {
    // Keep the page's height while the new answers arrive so a refresh does not move the scroll position.
    root.style.minHeight = root.offsetHeight + 'px';
    setTimeout(() => { root.style.minHeight = ''; }, 5000);
  }
  try {
    page.mod.render(root, ctx);
  } catch (e) {
    console.error(e);
    clear(root).append(errorBox(e));
  }
}

window.addEventListener('hashchange', () => { route(); scheduleRefresh(); });
window.addEventListener('lumen:unauthorized', showAuth);
// Module scripts run after the document is parsed, so the shell elements exist already.
route();
scheduleRefresh();
