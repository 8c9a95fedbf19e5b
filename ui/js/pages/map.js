/**
 * pages/map.js — `#/map`: the dependency map from `GET /v1/services`. Calling workloads on the left, what
 * they call (providers, and workloads that serve others) on the right; each edge leaves its workload on its
 * own lane with a label (calls · error % · P90), its thickness follows calls and its colour the error rate.
 * Clicking an edge opens Traces filtered to that workload and provider.
 */
import { h, s, clear, select } from '../dom.js';
import { card, errorBox, loading, emptyState, statTile, maxOf } from '../charts.js';
import { fmtNum, fmtPct, fmtMs, fmtInt } from '../format.js';
import { api } from '../api.js';
import { commonParams, navigate, setParams } from '../state.js';

export function errColor(rate) {
  if (rate >= 0.05) return '#d04a4a';
  if (rate >= 0.01) return '#d99a1e';
  return '#3e9e74';
}

export function render(root, ctx) {
  const limitSel = select([['30', 'Top 30 edges'], ['100', 'Top 100 edges'], ['all', 'All edges']], ctx.params.edges || 'auto', { 'data-testid': 'map-edges' });
  limitSel.addEventListener('change', () => setParams({ edges: limitSel.value }));
  const tiles = h('div', { class: 'tiles' });
  const body = h('div', {}, loading());
  const legend = h('div', { class: 'map-legend' },
    h('span', {}, h('span', { class: 'swatch', style: { background: errColor(0) } }), ' < 1% errors'),
    h('span', {}, h('span', { class: 'swatch', style: { background: errColor(0.02) } }), ' 1–5%'),
    h('span', {}, h('span', { class: 'swatch', style: { background: errColor(0.1) } }), ' ≥ 5%'),
    h('span', { class: 'muted' }, 'thickness = calls · click an edge to see its calls'));
  clear(root).append(tiles, card('Service map', body, { testid: 'service-map', actions: h('div', { class: 'search-row' }, legend, limitSel) }));

  api.get('/v1/services', commonParams()).then((d) => {
    if (!ctx.isCurrent()) return;
    const edges = (d.edges || []).slice().sort((a, b) => b.calls - a.calls);
    const nodes = d.nodes || [];
    const workloads = nodes.filter((n) => n.kind !== 'provider');
    clear(tiles).append(
      statTile('Workloads', workloads.length, fmtNum, { testid: 'map-workloads' }),
      statTile('Providers', nodes.length - workloads.length, fmtNum, { testid: 'map-providers' }),
      statTile('Edges', edges.length, fmtNum, { testid: 'map-edge-count' }),
      statTile('Calls', edges.reduce((a, e) => a + e.calls, 0), fmtInt, { testid: 'map-calls' }));
    if (!edges.length) { clear(body).append(emptyState('No calls in this range', 'Nothing called a provider with the current filters.')); return; }
    let limit = ctx.params.edges === 'all' ? Infinity : Number(ctx.params.edges) || (edges.length <= 120 ? Infinity : 30);
    if (limitSel.value === 'auto') limitSel.value = limit === Infinity ? 'all' : '30';
    const shown = edges.slice(0, limit);
    clear(body).append(shown.length < edges.length
      ? h('div', { class: 'muted', style: { marginBottom: '8px' } }, `Showing the ${shown.length} busiest of ${edges.length} edges.`) : null,
    h('div', { class: 'map-wrap' }, drawMap(nodes, shown)));
  }).catch((e) => { if (ctx.isCurrent()) clear(body).append(errorBox(e)); });
}

function drawMap(nodes, edges) {
  const kind = new Map(nodes.map((n) => [n.id, n.kind]));
  const LANE = 17, GAP = 10, NODE_W = 180, LABEL_W = 200, PAD = 6;
  // Left: sources ordered by their total calls; right: targets ordered by calls received.
  const byCalls = (key) => {
    const m = new Map();
    for (const e of edges) m.set(e[key], (m.get(e[key]) || 0) + e.calls);
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  const sources = byCalls('source');
  const targets = byCalls('target');
  const out = new Map(sources.map(([id]) => [id, edges.filter((e) => e.source === id)]));
  let y = PAD;
  const srcPos = new Map();
  const laneY = new Map();
  for (const [id] of sources) {
    const list = out.get(id);
    const hgt = Math.max(list.length * LANE, 30);
    srcPos.set(id, { y, h: hgt });
    list.forEach((e, i) => laneY.set(e, y + (hgt - list.length * LANE) / 2 + i * LANE + LANE / 2));
    y += hgt + GAP;
  }
  const leftH = y;
  const maxCalls = maxOf(edges, (e) => e.calls);
  const width = 1100;
  const xR = width - NODE_W;
  // Right nodes share the height in proportion to their incoming edges, with a floor.
  const inc = new Map(targets.map(([id]) => [id, edges.filter((e) => e.target === id)]));
  const totalIn = edges.length;
  const avail = Math.max(leftH - targets.length * GAP, targets.length * 40);
  const tgtPos = new Map();
  let ty = PAD;
  for (const [id] of targets) {
    const hgt = Math.max(40, (inc.get(id).length / totalIn) * avail);
    tgtPos.set(id, { y: ty, h: hgt });
    // incoming edges enter ordered by their source lane so fewer cross
    const list = inc.get(id).slice().sort((a, b) => laneY.get(a) - laneY.get(b));
    list.forEach((e, i) => e._ty = ty + ((i + 0.5) / list.length) * hgt);
    ty += hgt + GAP;
  }
  const height = Math.max(leftH, ty) + PAD;
  const svg = s('svg', { width, height, class: 'map-svg', 'data-testid': 'map-svg' });
  const gEdges = s('g');
  const gNodes = s('g');
  svg.append(gEdges, gNodes);
  const x0 = NODE_W, x1 = NODE_W + LABEL_W;
  for (const e of edges) {
    const ly = laneY.get(e);
    const w = 1 + Math.sqrt(e.calls / maxCalls) * 7;
    const color = errColor(e.error_rate || 0);
    const mid = (x1 + xR) / 2;
    const d = `M${x0},${ly} L${x1},${ly} C${mid},${ly} ${mid},${e._ty} ${xR},${e._ty}`;
    const label = `${fmtNum(e.calls)} · ${fmtPct(e.error_rate)} err · P90 ${fmtMs(e.p90_ms)}`;
    const g = s('g', {
      class: 'edge', 'data-testid': 'map-edge', 'data-source': e.source, 'data-target': e.target, 'data-calls': e.calls,
      onClick: () => navigate('/traces', kind.get(e.target) === 'provider' || e.provider ? { service: e.source, provider: e.provider || e.target } : { service: e.source }),
    },
    s('title', {}, `${e.source} → ${e.target}${e.provider && e.provider !== e.target ? ' (' + e.provider + ')' : ''}\n${fmtInt(e.calls)} calls, ${fmtInt(e.errors)} errors (${fmtPct(e.error_rate)}), P90 ${fmtMs(e.p90_ms)}`),
    s('path', { d, stroke: color, 'stroke-width': w }),
    s('path', { d, stroke: 'transparent', 'stroke-width': Math.max(w, 10) }),
    s('text', { x: x0 + 8, y: ly - 3 }, label));
    gEdges.append(g);
  }
  for (const [id] of sources) {
    const p = srcPos.get(id);
    gNodes.append(s('g', { class: 'node workload', 'data-testid': 'map-node', 'data-node': id, 'data-kind': 'workload' },
      s('rect', { x: 1, y: p.y, width: NODE_W - 2, height: p.h }),
      s('text', { x: 10, y: p.y + Math.min(p.h / 2, 16) + 4 }, trunc(id, 24)),
      p.h >= 44 ? s('text', { x: 10, y: p.y + Math.min(p.h / 2, 16) + 18, class: 'node-sub' }, `${out.get(id).length} dependencies`) : null,
      s('title', {}, id)));
  }
  for (const [id, calls] of targets) {
    const p = tgtPos.get(id);
    const k = kind.get(id) === 'provider' ? 'provider' : 'target-workload';
    gNodes.append(s('g', { class: 'node ' + k, 'data-testid': 'map-node', 'data-node': id, 'data-kind': kind.get(id) || 'workload' },
      s('rect', { x: xR, y: p.y, width: NODE_W - 1, height: p.h }),
      s('text', { x: xR + 10, y: p.y + p.h / 2 - 2 }, trunc(id, 24)),
      s('text', { x: xR + 10, y: p.y + p.h / 2 + 12, class: 'node-sub' }, `${fmtNum(calls)} calls · ${inc.get(id).length} callers`),
      s('title', {}, id)));
  }
  return svg;
}

function trunc(str, n) {
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}
