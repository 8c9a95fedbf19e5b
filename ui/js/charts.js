/**
 * charts.js — the hand-written SVG charts and the data widgets every page uses:
 *   lineChart (time series, several series, hover tooltip, legend toggles), barChart (horizontal, ranked),
 *   histogram (bucketed counts, optionally stacked by group), statTile, dataTable (sortable), and the
 *   empty / error / loading placeholders.
 * Charts measure their container and redraw on resize so text stays crisp (no viewBox stretching).
 */
import { h, s, clear } from './dom.js';
import { fmtNum, fmtTime } from './format.js';
import { isAbort } from './api.js';

export const PALETTE = ['#3e6fd8', '#e8833a', '#2ea37a', '#c94f7c', '#8a63d2', '#2aa5c0', '#b8a22a', '#6b7687', '#d9534f', '#5c9e3f'];
export const colorAt = (i) => PALETTE[i % PALETTE.length];

/**
 * Largest / smallest of `arr` (optionally of `f(item)`), `init` when empty. A loop, never Math.max(...arr):
 * spreading ~100k values overflows the call stack (RangeError).
 */
export function maxOf(arr, f = (v) => v, init = -Infinity) {
  let m = init;
  for (const x of arr) { const v = f(x); if (v > m) m = v; }
  return m;
}
export function minOf(arr, f = (v) => v, init = Infinity) {
  let m = init;
  for (const x of arr) { const v = f(x); if (v < m) m = v; }
  return m;
}

/** Calls `draw(width)` now and whenever the element's width changes. */
function responsive(el, draw) {
  let last = 0;
  const run = () => {
    const w = Math.floor(el.clientWidth);
    if (w > 0 && w !== last) { last = w; draw(w); }
  };
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(run).observe(el);
  requestAnimationFrame(run);
}

/** Round tick values for a [0, max] axis. */
export function niceTicks(min, max, count = 4) {
  if (!(max > min)) max = min + 1;
  const span = max - min;
  const step0 = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) || step0;
  const ticks = [];
  // The last tick is the first one at or above max, so the data never pokes out of the plot.
  for (let v = Math.floor(min / step) * step; ; v += step) {
    ticks.push(Number(v.toPrecision(12)));
    if (v >= max - step * 1e-9) break;
  }
  return ticks;
}

const TIME_STEPS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];

function timeTicks(t0, t1, maxTicks) {
  const span = t1 - t0;
  const step = TIME_STEPS.find((st) => span / st <= maxTicks) || span / maxTicks;
  const offset = new Date().getTimezoneOffset() * 60e3; // align ticks to local clock boundaries
  const ticks = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, '0');
  if (step >= 86400e3) return d.toLocaleString('en-US', { month: 'short', day: 'numeric' });
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  if (d.getHours() === 0 && d.getMinutes() === 0 && step >= 3600e3) return d.toLocaleString('en-US', { month: 'short', day: 'numeric' });
  return hm;
}

/**
 * Line chart over time.
 * series: [{name, color?, points: [{t: ms|Date|string, v: number|null}]}]
 * opts: {height, format (y values), yMin, xDomain: [t0, t1], testid, area (fill under single series)}
 */
export function lineChart(series, opts = {}) {
  const height = opts.height || 200;
  const format = opts.format || fmtNum;
  const wrap = h('div', { class: 'chart line-chart', 'data-testid': opts.testid || 'line-chart' });
  const plot = h('div', { class: 'chart-plot', style: { height: height + 'px' } });
  const tip = h('div', { class: 'chart-tip', hidden: true });
  const hidden = new Set();
  const data = series.map((se, i) => ({
    name: se.name ?? '(none)', color: se.color || colorAt(i),
    points: se.points.map((p) => ({ t: +new Date(p.t), v: p.v === undefined ? null : p.v })),
  }));
  const legend = h('div', { class: 'chart-legend' });
  wrap.append(plot, tip);
  if (data.length > 1 || opts.legend) wrap.append(legend);
  const allT = [];
  for (const d of data) for (const p of d.points) allT.push(p.t);
  if (!allT.length || data.every((d) => d.points.every((p) => p.v === null))) {
    plot.append(h('div', { class: 'chart-empty' }, 'No data in this range'));
  }

  const draw = (width) => {
    clear(plot);
    const visible = data.filter((d) => !hidden.has(d.name));
    let vMax = -Infinity;
    for (const d of visible) for (const p of d.points) if (p.v !== null && Number.isFinite(p.v) && p.v > vMax) vMax = p.v;
    if (!allT.length) { plot.append(h('div', { class: 'chart-empty' }, 'No data in this range')); return; }
    const t0 = opts.xDomain ? +new Date(opts.xDomain[0]) : minOf(allT);
    const t1 = opts.xDomain ? +new Date(opts.xDomain[1]) : maxOf(allT);
    const marks = opts.markers || []; // horizontal reference lines, e.g. an alert threshold
    const yMax0 = maxOf(marks, (mk) => mk.y, vMax === -Infinity ? 0 : vMax) || 1;
    const yMin = opts.yMin ?? 0;
    const yt = niceTicks(yMin, yMax0 > yMin ? yMax0 : yMin + 1, 4);
    const yMax = yt[yt.length - 1];
    const labelW = maxOf(yt, (v) => format(v).length, 0) * 6.2 + 10;
    const m = { l: labelW, r: 10, t: 8, b: 22 };
    const iw = width - m.l - m.r, ih = height - m.t - m.b;
    const x = (t) => m.l + (t1 === t0 ? iw / 2 : ((t - t0) / (t1 - t0)) * iw);
    const y = (v) => m.t + ih - ((v - yMin) / (yMax - yMin)) * ih;
    const svg = s('svg', { width, height, class: 'chart-svg' });
    for (const v of yt) {
      svg.append(s('line', { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v), class: 'grid' }));
      svg.append(s('text', { x: m.l - 6, y: y(v) + 3.5, class: 'axis-label', 'text-anchor': 'end' }, format(v)));
    }
    const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor(iw / 80)));
    for (const t of ticks) {
      svg.append(s('line', { x1: x(t), x2: x(t), y1: m.t + ih, y2: m.t + ih + 4, class: 'axis' }));
      svg.append(s('text', { x: x(t), y: height - 6, class: 'axis-label', 'text-anchor': 'middle' }, timeLabel(t, step)));
    }
    svg.append(s('line', { x1: m.l, x2: width - m.r, y1: m.t + ih, y2: m.t + ih, class: 'axis' }));
    for (const d of visible) {
      // Gaps (null) break the line instead of dropping to zero.
      let path = '', pen = false;
      const lone = []; // points with no neighbour get a dot, or they would be invisible
      d.points.forEach((p, i) => {
        if (p.v === null || !Number.isFinite(p.v)) { pen = false; return; }
        path += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1);
        const next = d.points[i + 1];
        if (!pen && (!next || next.v === null)) lone.push(p);
        pen = true;
      });
      if (opts.area && visible.length === 1 && path) {
        const first = d.points.find((p) => p.v !== null), last = [...d.points].reverse().find((p) => p.v !== null);
        svg.append(s('path', { d: path + `L${x(last.t)},${y(yMin)}L${x(first.t)},${y(yMin)}Z`, fill: d.color, class: 'area' }));
      }
      svg.append(s('path', { d: path, stroke: d.color, class: 'line', 'data-series': d.name }));
      for (const p of lone) svg.append(s('circle', { cx: x(p.t), cy: y(p.v), r: 2, fill: d.color }));
    }
    for (const mk of marks) {
      svg.append(s('line', { x1: m.l, x2: width - m.r, y1: y(mk.y), y2: y(mk.y), class: 'marker' }));
      if (mk.label) svg.append(s('text', { x: width - m.r - 4, y: y(mk.y) - 4, class: 'marker-label', 'text-anchor': 'end' }, mk.label));
    }
    const cursor = s('line', { y1: m.t, y2: m.t + ih, class: 'cursor', visibility: 'hidden' });
    const dots = s('g');
    svg.append(cursor, dots);
    const overlay = s('rect', { x: m.l, y: m.t, width: Math.max(iw, 1), height: ih, fill: 'transparent' });
    svg.append(overlay);
    const times = [...new Set(allT)].sort((a, b) => a - b);
    overlay.addEventListener('mousemove', (ev) => {
      const rect = svg.getBoundingClientRect();
      const px = ev.clientX - rect.left;
      const tt = t0 + ((px - m.l) / iw) * (t1 - t0);
      let best = times[0];
      for (const t of times) if (Math.abs(t - tt) < Math.abs(best - tt)) best = t;
      cursor.setAttribute('x1', x(best)); cursor.setAttribute('x2', x(best)); cursor.setAttribute('visibility', 'visible');
      clear(dots);
      const rows = [];
      for (const d of visible) {
        const p = d.points.find((q) => q.t === best);
        if (!p) continue;
        rows.push([d, p.v]);
        if (p.v !== null) dots.append(s('circle', { cx: x(best), cy: y(p.v), r: 3, fill: d.color, class: 'dot' }));
      }
      rows.sort((a, b) => (b[1] ?? -Infinity) - (a[1] ?? -Infinity));
      clear(tip);
      tip.append(h('div', { class: 'tip-time' }, fmtTime(new Date(best))));
      for (const [d, v] of rows.slice(0, 12)) {
        tip.append(h('div', { class: 'tip-row' }, h('span', { class: 'swatch', style: { background: d.color } }),
          h('span', { class: 'tip-name' }, d.name), h('span', { class: 'tip-val' }, format(v))));
      }
      tip.hidden = false;
      const left = x(best) + 14;
      tip.style.left = (left + 200 > width ? x(best) - 14 - tip.offsetWidth : left) + 'px';
      tip.style.top = m.t + 'px';
    });
    overlay.addEventListener('mouseleave', () => { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); clear(dots); });
    plot.append(svg);
  };

  for (const d of data) {
    const item = h('button', { class: 'legend-item', type: 'button', title: 'show / hide' },
      h('span', { class: 'swatch', style: { background: d.color } }), d.name);
    item.addEventListener('click', () => {
      if (hidden.has(d.name)) hidden.delete(d.name); else hidden.add(d.name);
      item.classList.toggle('off', hidden.has(d.name));
      draw(Math.floor(plot.clientWidth));
    });
    legend.append(item);
  }
  if (allT.length) responsive(plot, draw);
  return wrap;
}

/**
 * Horizontal bar chart, one row per item, sorted as given.
 * items: [{label, value, color?, title?, onClick?}]; opts: {format, testid, max}
 */
export function barChart(items, opts = {}) {
  const format = opts.format || fmtNum;
  const wrap = h('div', { class: 'chart bar-chart', 'data-testid': opts.testid || 'bar-chart' });
  if (!items.length) { wrap.append(h('div', { class: 'chart-empty' }, 'No data in this range')); return wrap; }
  const rowH = 22;
  const height = items.length * rowH + 4;
  const plot = h('div', { class: 'chart-plot', style: { height: height + 'px' } });
  wrap.append(plot);
  const max = opts.max ?? maxOf(items, (i) => i.value || 0, 0);
  responsive(plot, (width) => {
    clear(plot);
    const labelW = Math.min(maxOf(items, (i) => String(i.label).length, 0) * 6.4 + 12, width * 0.4);
    const valW = 70;
    const iw = Math.max(width - labelW - valW, 10);
    const svg = s('svg', { width, height, class: 'chart-svg' });
    items.forEach((it, i) => {
      const yy = i * rowH + 2;
      const w = max > 0 ? Math.max(((it.value || 0) / max) * iw, it.value > 0 ? 1.5 : 0) : 0;
      const g = s('g', { class: 'bar-row' + (it.onClick ? ' clickable' : ''), 'data-testid': 'bar', 'data-label': it.label, 'data-value': it.value });
      g.append(s('title', {}, it.title || `${it.label}: ${format(it.value)}`));
      g.append(s('text', { x: labelW - 8, y: yy + rowH / 2 + 3.5, 'text-anchor': 'end', class: 'bar-label' }, truncate(String(it.label), Math.floor(labelW / 6.4))));
      g.append(s('rect', { x: labelW, y: yy + 3, width: iw, height: rowH - 8, class: 'bar-bg', rx: 2 }));
      g.append(s('rect', { x: labelW, y: yy + 3, width: w, height: rowH - 8, fill: it.color || opts.color || PALETTE[0], rx: 2 }));
      g.append(s('text', { x: labelW + iw + 6, y: yy + rowH / 2 + 3.5, class: 'bar-value' }, format(it.value)));
      if (it.onClick) g.addEventListener('click', it.onClick);
      svg.append(g);
    });
    plot.append(svg);
  });
  return wrap;
}

function truncate(str, n) {
  return str.length > n ? str.slice(0, Math.max(n - 1, 1)) + '…' : str;
}

/**
 * Histogram of bucketed counts. k boundaries [b0..b(k-1)]; each group has k+1 counts: counts[i] are the
 * values in (b[i-1], b[i]] (counts[0]: ≤ b0), counts[k] the values > b(k-1). Several groups are stacked.
 */
export function histogram(boundaries, groups, opts = {}) {
  const format = opts.format || fmtNum;
  const height = opts.height || 220;
  const wrap = h('div', { class: 'chart histogram', 'data-testid': opts.testid || 'histogram' });
  const plot = h('div', { class: 'chart-plot', style: { height: height + 'px' } });
  const tip = h('div', { class: 'chart-tip', hidden: true });
  wrap.append(plot, tip);
  const k = boundaries.length;
  const labels = [];
  for (let i = 0; i <= k; i++) labels.push(i === k ? '> ' + format(boundaries[k - 1]) : '≤ ' + format(boundaries[i]));
  // Trim empty buckets at both ends so the shape fills the width.
  const totals = labels.map((_, i) => groups.reduce((a, g) => a + (g.counts[i] || 0), 0));
  let lo = totals.findIndex((c) => c > 0), hi = totals.length - 1 - [...totals].reverse().findIndex((c) => c > 0);
  if (lo < 0) { plot.append(h('div', { class: 'chart-empty' }, 'No data in this range')); return wrap; }
  lo = Math.max(lo - 1, 0); hi = Math.min(hi + 1, totals.length - 1);
  const idx = []; for (let i = lo; i <= hi; i++) idx.push(i);
  if (groups.length > 1) {
    wrap.append(h('div', { class: 'chart-legend' }, groups.map((g, i) =>
      h('span', { class: 'legend-item static' }, h('span', { class: 'swatch', style: { background: colorAt(i) } }), g.group ?? '(none)'))));
  }
  responsive(plot, (width) => {
    clear(plot);
    const yt = niceTicks(0, maxOf(idx, (i) => totals[i], 1), 4);
    const yMax = yt[yt.length - 1];
    const m = { l: 44, r: 8, t: 8, b: 34 };
    const iw = width - m.l - m.r, ih = height - m.t - m.b;
    const bw = iw / idx.length;
    const y = (v) => m.t + ih - (v / yMax) * ih;
    const svg = s('svg', { width, height, class: 'chart-svg' });
    for (const v of yt) {
      svg.append(s('line', { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v), class: 'grid' }));
      svg.append(s('text', { x: m.l - 6, y: y(v) + 3.5, class: 'axis-label', 'text-anchor': 'end' }, fmtNum(v)));
    }
    const every = Math.ceil((idx.length * 52) / iw);
    idx.forEach((bi, j) => {
      const x0 = m.l + j * bw;
      let acc = 0;
      const col = s('g', { class: 'hist-bar', 'data-testid': 'hist-bucket', 'data-count': totals[bi] });
      groups.forEach((g, gi) => {
        const c = g.counts[bi] || 0;
        if (c > 0) col.append(s('rect', { x: x0 + 1, width: Math.max(bw - 2, 1), y: y(acc + c), height: y(acc) - y(acc + c), fill: colorAt(gi) }));
        acc += c;
      });
      col.append(s('rect', { x: x0, width: bw, y: m.t, height: ih, fill: 'transparent' }));
      col.addEventListener('mousemove', () => {
        clear(tip);
        tip.append(h('div', { class: 'tip-time' }, labels[bi]));
        groups.forEach((g, gi) => tip.append(h('div', { class: 'tip-row' }, h('span', { class: 'swatch', style: { background: colorAt(gi) } }),
          h('span', { class: 'tip-name' }, g.group ?? (groups.length > 1 ? '(none)' : 'calls')), h('span', { class: 'tip-val' }, fmtNum(g.counts[bi] || 0)))));
        tip.hidden = false;
        tip.style.left = Math.min(x0 + bw + 8, width - 180) + 'px';
        tip.style.top = m.t + 'px';
      });
      col.addEventListener('mouseleave', () => { tip.hidden = true; });
      svg.append(col);
      if (j % every === 0) svg.append(s('text', { x: x0 + bw / 2, y: height - 18, class: 'axis-label', 'text-anchor': 'middle' }, labels[bi]));
    });
    svg.append(s('line', { x1: m.l, x2: width - m.r, y1: m.t + ih, y2: m.t + ih, class: 'axis' }));
    if (opts.xLabel) svg.append(s('text', { x: m.l + iw / 2, y: height - 3, class: 'axis-label', 'text-anchor': 'middle' }, opts.xLabel));
    plot.append(svg);
  });
  return wrap;
}

/** A KPI tile; `raw` goes into data-value so tests can compare with the API exactly. */
export function statTile(label, raw, format = fmtNum, opts = {}) {
  return h('div', { class: ['tile', opts.tone && 'tone-' + opts.tone], 'data-testid': opts.testid, 'data-value': raw ?? '' },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value', title: raw === null || raw === undefined ? '' : String(raw) }, format(raw)),
    opts.sub ? h('div', { class: 'tile-sub' }, opts.sub) : null);
}

/**
 * Sortable table.
 * columns: [{key, label, format?, render?(row) → node, align?: 'right', sortValue?(row), width?}]
 * opts: {sort: {key, dir: 'asc'|'desc'}, onRowClick(row), testid, rowTestid, rowAttrs(row), empty}
 */
export function dataTable(columns, rows, opts = {}) {
  let sort = opts.sort ? { ...opts.sort } : null;
  let showAll = !opts.limit;
  const table = h('table', { class: 'data-table', 'data-testid': opts.testid, 'data-rows': rows.length });
  const thead = h('thead');
  const tbody = h('tbody');
  table.append(thead, tbody);
  const valueOf = (col, row) => (col.sortValue ? col.sortValue(row) : row[col.key]);
  const renderHead = () => {
    clear(thead);
    thead.append(h('tr', {}, columns.map((c) => {
      const th = h('th', { class: [c.align === 'right' && 'num', c.sortable !== false && 'sortable'], style: c.width ? { width: c.width } : null },
        c.label, sort && sort.key === c.key ? h('span', { class: 'sort-ind' }, sort.dir === 'asc' ? ' ▲' : ' ▼') : null);
      if (c.sortable !== false) th.addEventListener('click', () => {
        sort = sort && sort.key === c.key ? { key: c.key, dir: sort.dir === 'asc' ? 'desc' : 'asc' } : { key: c.key, dir: c.align === 'right' ? 'desc' : 'asc' };
        renderHead(); renderBody();
      });
      return th;
    })));
  };
  const renderBody = () => {
    clear(tbody);
    let list = rows.slice();
    if (sort) {
      const col = columns.find((c) => c.key === sort.key);
      if (col) {
        const dir = sort.dir === 'asc' ? 1 : -1;
        list.sort((a, b) => {
          const va = valueOf(col, a), vb = valueOf(col, b);
          if (va === vb) return 0;
          if (va === null || va === undefined) return 1;
          if (vb === null || vb === undefined) return -1;
          return (typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb))) * dir;
        });
      }
    }
    if (!list.length) {
      tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty-cell' }, opts.empty || 'Nothing in this range')));
      return;
    }
    const hiddenCount = showAll ? 0 : Math.max(list.length - opts.limit, 0);
    if (hiddenCount) list = list.slice(0, opts.limit);
    for (const row of list) {
      const tr = h('tr', { class: opts.onRowClick ? 'clickable' : null, 'data-testid': opts.rowTestid, ...(opts.rowAttrs ? opts.rowAttrs(row) : {}) },
        columns.map((c) => {
          const v = row[c.key];
          const content = c.render ? c.render(row) : c.format ? c.format(v, row) : v ?? '—';
          return h('td', { class: [c.align === 'right' && 'num', c.className], 'data-col': c.key }, content);
        }));
      if (opts.onRowClick) tr.addEventListener('click', (ev) => { if (!ev.target.closest('a,button,input,select,label,textarea')) opts.onRowClick(row, ev); });
      tbody.append(tr);
    }
    if (hiddenCount) {
      tbody.append(h('tr', { class: 'more-row' }, h('td', { colspan: columns.length },
        h('button', { class: 'btn ghost small', 'data-testid': 'table-show-all', onClick: () => { showAll = true; renderBody(); } }, `Show all ${rows.length}`))));
    }
  };
  renderHead();
  renderBody();
  return h('div', { class: 'table-wrap' }, table);
}

export function emptyState(text, sub) {
  return h('div', { class: 'empty-state', 'data-testid': 'empty-state' }, h('div', { class: 'empty-title' }, text), sub ? h('div', { class: 'empty-sub' }, sub) : null);
}

export function errorBox(err) {
  // A cancelled request (new route / refresh) is not an error: show nothing.
  if (isAbort(err)) return h('span', { hidden: true, class: 'aborted' });
  const status = err && err.status ? `HTTP ${err.status}` : 'Error';
  return h('div', { class: 'error-box', 'data-testid': 'error-banner', role: 'alert' },
    h('strong', {}, status), ' ', h('span', { class: 'error-text' }, String((err && err.body && err.body.error) || (err && err.message) || err)));
}

export function loading(text = 'Loading…') {
  return h('div', { class: 'loading', 'data-testid': 'loading' }, h('span', { class: 'spinner' }), text);
}

/** A titled panel (card) wrapper. */
export function card(title, body, opts = {}) {
  return h('section', { class: ['card', opts.wide && 'wide', opts.className], 'data-testid': opts.testid },
    title || opts.actions ? h('header', { class: 'card-head' }, h('h3', {}, title), opts.sub ? h('span', { class: 'card-sub' }, opts.sub) : null,
      opts.actions ? h('div', { class: 'card-actions' }, opts.actions) : null) : null,
    h('div', { class: 'card-body' }, body));
}

/** Fill `el` with a card body that loads asynchronously; errors and empties show in place. */
export async function fillAsync(el, promise, render) {
  clear(el).append(loading());
  try {
    const data = await promise;
    const node = render(data);
    clear(el).append(node);
  } catch (e) {
    if (isAbort(e)) return; // the render was cancelled: its element is gone or about to be replaced
    clear(el).append(errorBox(e));
    if (!(e && e.status)) console.error(e);
  }
}
