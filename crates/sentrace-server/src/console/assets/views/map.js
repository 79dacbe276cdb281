// #/map: the service map as SVG, with the security overlay: edges first seen recently
// (dashed, orange) and services with findings (red ring).
import { api, el, field, select, table, qs, heading, routeParams, sevBadge } from '../lib.js';

const NS = 'http://www.w3.org/2000/svg';
const LOOKBACKS = [['3600000', 'Last hour'], ['86400000', 'Last day'], ['604800000', 'Last 7 days']];

function svg(tag, attrs, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  for (const c of children) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return n;
}

async function load(lookbackMs) {
  try {
    return (await api('/api/map' + qs({ lookback_ms: lookbackMs }))).data;
  } catch (e) {
    if (e.status !== 404) throw e;
    // Servers without /api/map: Jaeger's dependencies and the findings list.
    const endTs = Date.now();
    const deps = (await api('/api/dependencies' + qs({ endTs, lookback: lookbackMs }))).data || [];
    let findings = [];
    try { findings = (await api('/api/findings?limit=1000')).data || []; } catch (_) { findings = []; }
    const nodes = new Map();
    const touch = (s) => { if (!nodes.has(s)) nodes.set(s, { service: s, findings: 0, max_severity: null }); return nodes.get(s); };
    for (const d of deps) { touch(d.parent); touch(d.child); }
    for (const f of findings) {
      const s = ((f.resources || []).find((r) => r.type === 'service') || {}).name;
      if (s) { const n = touch(s); n.findings += 1; n.max_severity = n.max_severity || f.severity; }
    }
    return { nodes: [...nodes.values()], edges: deps.map((d) => ({ parent: d.parent, child: d.child, calls: d.callCount, new: false })) };
  }
}

export async function render(main) {
  const p = routeParams();
  heading(main, 'Service map');
  const lookback = select('lookback_ms', LOOKBACKS, p.get('lookback_ms') || '86400000');
  const form = el('form', { class: 'filters', 'aria-label': 'Map window' }, field('Window', lookback), el('div', {}, el('button', { type: 'submit' }, 'Show')));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); window.location.hash = '#/map' + qs({ lookback_ms: lookback.value }); });
  main.appendChild(form);
  const data = await load(lookback.value);
  const nodes = (data && data.nodes) || [];
  const edges = (data && data.edges) || [];
  if (!nodes.length) {
    main.appendChild(el('p', { class: 'muted' }, 'No calls between services in this window.'));
    return;
  }
  const W = 900;
  const H = Math.max(420, 60 * Math.ceil(nodes.length / 2));
  const R = Math.min(W, H) / 2 - 70;
  const pos = new Map();
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    pos.set(n.service, [W / 2 + R * Math.cos(a), H / 2 + R * Math.sin(a)]);
  });
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'map-title map-desc' },
    svg('title', { id: 'map-title' }, 'Service map'),
    svg('desc', { id: 'map-desc' }, `${nodes.length} services and ${edges.length} call edges; the tables below list the same data.`),
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '28', refY: '5', markerWidth: '8', markerHeight: '8', orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8a909c' }))));
  for (const e of edges) {
    const a = pos.get(e.parent);
    const b = pos.get(e.child);
    if (!a || !b) continue;
    root.appendChild(svg('line', { class: e.new ? 'edge new' : 'edge', x1: a[0], y1: a[1], x2: b[0], y2: b[1], 'marker-end': 'url(#arrow)' },
      svg('title', {}, `${e.parent} → ${e.child}: ${e.calls} calls${e.new ? ' (new)' : ''}`)));
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.service);
    root.appendChild(svg('g', { class: n.findings ? 'node finding' : 'node', transform: `translate(${x},${y})` },
      svg('circle', { r: '18' }),
      svg('text', { x: '0', y: '34', 'text-anchor': 'middle' }, n.service),
      svg('title', {}, `${n.service}${n.findings ? `: ${n.findings} findings, worst ${n.max_severity}` : ''}`)));
  }
  main.appendChild(el('div', { class: 'map' }, root));
  main.appendChild(el('p', { class: 'legend' },
    el('span', {}, 'Red ring: service with findings'), el('span', {}, 'Dashed orange: edge first seen recently')));
  main.appendChild(el('h2', {}, 'Services'));
  main.appendChild(table(['Service', 'Findings', 'Worst severity'], nodes.map((n) => [
    n.service, n.findings ? el('a', { href: '#/findings' }, String(n.findings)) : '0', n.max_severity ? sevBadge(n.max_severity) : '',
  ])));
  main.appendChild(el('h2', {}, 'Calls'));
  main.appendChild(table(['From', 'To', 'Calls', 'New'], edges.map((e) => [e.parent, e.child, String(e.calls), e.new ? 'new' : ''])));
}
