/**
 * pages/dashboards.js — `#/dashboards` (list, create) and `#/dashboards/<id>` (view, edit, delete).
 * Editing happens on a draft copy: title, description and each panel (title, explore endpoint + params or
 * SQL, chart, field, width), add / remove / reorder; Save PUTs (or POSTs a new one) the whole dashboard.
 */
import { h, clear, select } from '../dom.js';
import { card, errorBox, loading, emptyState } from '../charts.js';
import { fmtAgo } from '../format.js';
import { api } from '../api.js';
import { link, navigate, ui } from '../state.js';
import { renderPanel, ENDPOINTS, CHART_KINDS } from '../panels.js';

export function render(root, ctx) {
  const id = ctx.segments[1];
  if (!id) return renderList(root, ctx);
  if (ctx.refresh && ui.busy) return undefined;
  return renderDashboard(root, ctx, id);
}

function renderList(root, ctx) {
  const body = h('div', {}, loading());
  clear(root).append(
    h('div', { class: 'toolbar' }, h('div', { class: 'muted' }, 'Panels use the time range and filters of the top bar unless they set their own.'),
      h('div', { class: 'spacer' }), h('a', { class: 'btn primary', href: link('/dashboards/new'), 'data-testid': 'dash-new' }, '+ New dashboard')),
    body);
  api.get('/v1/dashboards').then((d) => {
    if (!ctx.isCurrent()) return;
    const list = d.dashboards || [];
    if (!list.length) { clear(body).append(card('', emptyState('No dashboards yet', 'Create one with “New dashboard”.'))); return; }
    clear(body).append(h('div', { class: 'list-cards', 'data-testid': 'dash-list' }, list.map((x) =>
      h('a', { class: 'dash-card', href: link('/dashboards/' + x.id), 'data-testid': 'dash-card', 'data-id': x.id, 'data-title': x.title },
        h('div', { class: 't' }, x.title || x.id),
        x.description ? h('div', { class: 'muted' }, x.description) : null,
        h('div', { class: 'cell-sub' }, `${x.panels ?? 0} panel${x.panels === 1 ? '' : 's'}`, x.version === 0 ? ' · built in' : x.updated_at ? ' · updated ' + fmtAgo(x.updated_at) : '')))));
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(errorBox(e)); });
}

let panelSeq = 0;
function newPanel() {
  panelSeq += 1;
  return { id: 'p' + Date.now().toString(36) + panelSeq, title: 'New panel', kind: 'explore', endpoint: 'timeseries', params: {}, chart: 'line', field: 'calls', width: 1 };
}

function paramsToText(p) {
  return new URLSearchParams(p || {}).toString().replace(/&/g, ' & ');
}

function textToParams(t) {
  const out = {};
  for (const [k, v] of new URLSearchParams(String(t).replace(/\s*&\s*/g, '&').trim())) if (k) out[k] = v;
  return out;
}

function renderDashboard(root, ctx, id) {
  const isNew = id === 'new';
  const body = h('div', {}, loading());
  clear(root).append(body);
  const start = (dash) => {
    let editing = isNew || ctx.params.edit === '1';
    let draft = JSON.parse(JSON.stringify(dash));
    const draw = () => {
      ui.busy = editing;
      clear(body).append(editing ? editor() : viewer());
    };
    const viewer = () => {
      const grid = h('div', { class: 'dash-grid', 'data-testid': 'dash-panels' });
      for (const p of dash.panels || []) {
        const el = h('div');
        grid.append(panelCard(p, el));
        renderPanel(el, p, ctx.isCurrent);
      }
      return h('div', { 'data-testid': 'dashboard', 'data-id': dash.id },
        h('div', { class: 'detail-head' }, h('a', { href: link('/dashboards') }, '← Dashboards'),
          h('h2', { 'data-testid': 'dash-title' }, dash.title || dash.id),
          dash.description ? h('span', { class: 'muted' }, dash.description) : null,
          h('div', { class: 'spacer', style: { flex: 1 } }),
          h('button', { class: 'btn', 'data-testid': 'dash-edit', onClick: () => { editing = true; draft = JSON.parse(JSON.stringify(dash)); draw(); } }, 'Edit'),
          h('button', { class: 'btn danger', 'data-testid': 'dash-delete', onClick: remove }, dash.id === 'default' ? 'Reset' : 'Delete')),
        (dash.panels || []).length ? grid : card('', emptyState('This dashboard has no panels', 'Edit it to add some.')));
    };
    const remove = async () => {
      const what = dash.id === 'default' ? 'Reset the default dashboard to its built-in panels?' : `Delete “${dash.title}”?`;
      if (!confirm(what)) return;
      try {
        await api.del('/v1/dashboards/' + encodeURIComponent(dash.id));
        navigate(dash.id === 'default' ? '/dashboards/default' : '/dashboards');
        if (dash.id === 'default') renderDashboard(root, ctx, id);
      } catch (e) { body.prepend(errorBox(e)); }
    };
    const save = async (btn) => {
      btn.disabled = true;
      const payload = { title: draft.title, description: draft.description || '', panels: draft.panels.map(cleanPanel) };
      try {
        const saved = isNew ? await api.post('/v1/dashboards', payload) : await api.put('/v1/dashboards/' + encodeURIComponent(dash.id), payload);
        ui.busy = false;
        if (isNew) { navigate('/dashboards/' + saved.id); return; }
        dash = saved; editing = false; draw();
      } catch (e) {
        btn.disabled = false;
        body.querySelector('.save-error')?.remove();
        body.prepend(h('div', { class: 'save-error' }, errorBox(e)));
      }
    };
    const editor = () => {
      const titleIn = h('input', { type: 'text', class: 'dash-title-input', value: draft.title || '', placeholder: 'Dashboard title', 'data-testid': 'dash-title-input' });
      titleIn.addEventListener('input', () => { draft.title = titleIn.value; });
      const descIn = h('input', { type: 'text', value: draft.description || '', placeholder: 'Description (optional)', 'data-testid': 'dash-description-input', style: { width: '100%' } });
      descIn.addEventListener('input', () => { draft.description = descIn.value; });
      const grid = h('div', { class: 'dash-grid', 'data-testid': 'dash-panels' });
      draft.panels = draft.panels || [];
      draft.panels.forEach((p, i) => grid.append(panelEditor(p, i)));
      const saveBtn = h('button', { class: 'btn primary', 'data-testid': 'dash-save' }, 'Save');
      saveBtn.addEventListener('click', () => save(saveBtn));
      return h('div', { 'data-testid': 'dashboard-editor' },
        h('div', { class: 'card', style: { padding: '12px 14px', marginBottom: '14px' } },
          h('div', { class: 'form' },
            h('label', { class: 'field half' }, 'Title', titleIn),
            h('label', { class: 'field half' }, 'Description', descIn)),
          h('div', { class: 'form-actions' },
            h('button', { class: 'btn', 'data-testid': 'dash-add-panel', onClick: () => { draft.panels.push(newPanel()); draw(); } }, '+ Add panel'),
            h('div', { style: { flex: 1 } }),
            h('button', { class: 'btn ghost', 'data-testid': 'dash-cancel', onClick: () => { ui.busy = false; if (isNew) navigate('/dashboards'); else { editing = false; draw(); } } }, 'Cancel'),
            saveBtn)),
        draft.panels.length ? grid : card('', emptyState('No panels yet', 'Add one with “Add panel”.')));
    };
    const panelEditor = (p, i) => {
      const preview = h('div');
      const refresh = debounce(() => renderPanel(preview, p, ctx.isCurrent), 500);
      const field = (label, input, cls) => h('label', { class: ['field', cls] }, label, input);
      const bind = (el, key, conv = (v) => v, redraw = false) => {
        el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', () => {
          p[key] = conv(el.value);
          if (redraw) draw(); else refresh();
        });
        return el;
      };
      const titleIn = bind(h('input', { type: 'text', value: p.title || '', 'data-testid': 'panel-title-input' }), 'title');
      titleIn.addEventListener('input', () => { head.textContent = titleIn.value; });
      const kindSel = bind(select([['explore', 'Explore API'], ['sql', 'SQL']], p.kind || 'explore', { 'data-testid': 'panel-kind' }), 'kind', (v) => v, true);
      const endpointSel = bind(select(ENDPOINTS, p.endpoint || 'timeseries', { 'data-testid': 'panel-endpoint' }), 'endpoint');
      const paramsIn = bind(h('input', { type: 'text', value: paramsToText(p.params), placeholder: 'split=model & top=5', 'data-testid': 'panel-params' }), 'params', textToParams);
      const sqlIn = bind(h('textarea', { rows: 5, 'data-testid': 'panel-sql', placeholder: 'SELECT date_trunc(\'minute\', start_time) AS t, count(*) AS calls FROM spans WHERE start_time >= $from AND start_time < $to GROUP BY 1 ORDER BY 1' }, p.sql || ''), 'sql');
      const chartSel = bind(select(CHART_KINDS, p.chart || 'line', { 'data-testid': 'panel-chart' }), 'chart');
      const fieldIn = bind(h('input', { type: 'text', value: p.field || '', placeholder: 'calls or p50_ms,p90_ms', 'data-testid': 'panel-field' }), 'field');
      const widthSel = bind(select([['1', 'Half width'], ['2', 'Full width']], String(p.width || 1), { 'data-testid': 'panel-width' }), 'width', Number, true);
      const head = h('span', {}, p.title || '');
      const move = (d) => { const j = i + d; if (j < 0 || j >= draft.panels.length) return; [draft.panels[i], draft.panels[j]] = [draft.panels[j], draft.panels[i]]; draw(); };
      const el = h('section', { class: ['card', (p.width || 1) >= 2 && 'w2'], 'data-testid': 'panel', 'data-panel-id': p.id },
        h('header', { class: 'card-head' }, h('h3', {}, head),
          h('div', { class: 'card-actions' },
            h('button', { class: 'btn ghost small', title: 'move up', 'data-testid': 'panel-up', disabled: i === 0, onClick: () => move(-1) }, '↑'),
            h('button', { class: 'btn ghost small', title: 'move down', 'data-testid': 'panel-down', disabled: i === draft.panels.length - 1, onClick: () => move(1) }, '↓'),
            h('button', { class: 'btn ghost small danger', title: 'remove', 'data-testid': 'panel-remove', onClick: () => { draft.panels.splice(i, 1); draw(); } }, 'Remove'))),
        h('div', { class: 'card-body' }, preview),
        h('div', { class: 'panel-editor' },
          field('Title', titleIn, 'full'),
          field('Source', kindSel),
          p.kind === 'sql' ? null : field('Endpoint', endpointSel),
          field('Chart', chartSel),
          field('Field(s)', fieldIn),
          field('Width', widthSel),
          p.kind === 'sql'
            ? field('SQL ($from / $to = the page range)', sqlIn, 'full')
            : field('Parameters (the top bar sets range and filters)', paramsIn, 'full')));
      renderPanel(preview, p, ctx.isCurrent);
      return el;
    };
    draw();
  };
  if (isNew) start({ title: 'New dashboard', description: '', panels: [newPanel()] });
  else {
    api.get('/v1/dashboards/' + encodeURIComponent(id)).then((d) => { if (ctx.isCurrent()) start(d); })
      .catch((e) => { if (ctx.isCurrent()) clear(body).append(h('div', {}, h('a', { href: link('/dashboards') }, '← Dashboards')), errorBox(e)); });
  }
}

/** A panel as the API takes it: an SQL panel has no endpoint or params, an explore panel no SQL. */
export function cleanPanel(p) {
  const out = { id: p.id, title: p.title || 'Untitled', kind: p.kind || 'explore', chart: p.chart || 'line', field: p.field || '', width: Number(p.width) >= 2 ? 2 : 1 };
  if (out.kind === 'sql') out.sql = p.sql || '';
  else { out.endpoint = p.endpoint || 'timeseries'; out.params = p.params || {}; }
  return out;
}

function panelCard(p, el) {
  const sub = p.kind === 'sql' ? 'SQL' : p.endpoint;
  return h('section', { class: ['card', (p.width || 1) >= 2 && 'w2'], 'data-testid': 'panel', 'data-panel-id': p.id, 'data-title': p.title },
    h('header', { class: 'card-head' }, h('h3', {}, p.title || 'Untitled'), h('span', { class: 'card-sub' }, sub)),
    h('div', { class: 'card-body' }, el));
}

function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
