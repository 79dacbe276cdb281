// #/search: Jaeger-style trace search over /api/services, /api/services/{s}/operations and
// /api/traces.
import { api, el, field, select, table, qs, fmtDurUs, fmtTimeMs, heading, routeParams, status } from '../lib.js';

const LOOKBACKS = [['1h', 'Last hour'], ['6h', 'Last 6 hours'], ['24h', 'Last day'], ['48h', 'Last 2 days'], ['168h', 'Last 7 days']];
const HOURS = { '1h': 1, '6h': 6, '24h': 24, '48h': 48, '168h': 168 };

// 'a=b c=d' → ['a:b', 'c:d'] (Jaeger's repeated tag=key:value).
function parseTags(text) {
  return text.split(/\s+/).filter(Boolean).map((t) => {
    const i = t.indexOf('=');
    if (i <= 0) throw new Error(`tag "${t}" is not key=value`);
    return `${t.slice(0, i)}:${t.slice(i + 1)}`;
  });
}

export function summarize(trace) {
  const spans = trace.spans || [];
  let min = Infinity;
  let max = 0;
  let root = null;
  const services = new Set();
  for (const s of spans) {
    min = Math.min(min, s.startTime);
    max = Math.max(max, s.startTime + s.duration);
    const p = trace.processes && trace.processes[s.processID];
    if (p) services.add(p.serviceName);
    const parent = (s.references || []).find((r) => r.refType === 'CHILD_OF');
    if (!parent && (!root || s.startTime < root.startTime)) root = s;
  }
  root = root || spans[0];
  const rootSvc = root && trace.processes && trace.processes[root.processID];
  return {
    id: trace.traceID,
    root: root ? `${rootSvc ? rootSvc.serviceName + ': ' : ''}${root.operationName}` : '(no spans)',
    spans: spans.length,
    services: [...services].sort(),
    startMs: Number.isFinite(min) ? Math.floor(min / 1000) : 0,
    durationUs: Number.isFinite(min) ? max - min : 0,
  };
}

export async function render(main) {
  const p = routeParams();
  heading(main, 'Search traces');
  const services = (await api('/api/services')).data || [];
  services.sort();
  const service = select('service', [['', '— choose a service —'], ...services], p.get('service'));
  service.required = true;
  const operation = select('operation', [['', 'all operations']], '');
  const tags = el('input', { name: 'tags', type: 'text', placeholder: 'http.status_code=500 error=true', value: p.get('tags') || '' });
  const lookback = select('lookback', LOOKBACKS, p.get('lookback') || '1h');
  const limit = el('input', { name: 'limit', type: 'number', min: '1', max: '1500', value: p.get('limit') || '20' });
  const traceId = el('input', { name: 'trace', type: 'text', placeholder: '32 hex digits', value: '' });

  async function loadOperations() {
    operation.length = 1;
    if (!service.value) return;
    const ops = (await api(`/api/services/${encodeURIComponent(service.value)}/operations`)).data || [];
    const names = [...new Set(ops.map((o) => (typeof o === 'string' ? o : o.name)))].sort();
    for (const n of names) operation.appendChild(el('option', { value: n }, n));
    if (p.get('operation')) operation.value = p.get('operation');
  }
  service.addEventListener('change', () => loadOperations().catch(() => {}));

  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Trace search' },
    field('Service', service), field('Operation', operation), field('Tags (key=value, space-separated)', tags),
    field('Lookback', lookback), field('Limit', limit),
    el('div', {}, el('button', { type: 'submit' }, 'Find traces')));
  const byId = el('form', { class: 'filters', 'aria-label': 'Open a trace by id' },
    field('Trace id', traceId), el('div', {}, el('button', { type: 'submit' }, 'Open trace')));
  main.append(form, byId);
  const results = el('section', { 'aria-label': 'Search results' });
  main.appendChild(results);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const params = { service: service.value, operation: operation.value, tags: tags.value.trim(), lookback: lookback.value, limit: limit.value };
    const next = '#/search' + qs(params);
    if (window.location.hash === next) run(params); else window.location.hash = next;
  });
  byId.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = traceId.value.trim().toLowerCase();
    if (id) window.location.hash = `#/trace/${encodeURIComponent(id)}`;
  });

  async function run(params) {
    results.replaceChildren(el('p', { class: 'muted' }, 'Searching…'));
    status('Searching…');
    const hours = HOURS[params.lookback] || 1;
    const endUs = Date.now() * 1000;
    const query = {
      service: params.service, operation: params.operation, limit: params.limit,
      start: endUs - hours * 3600 * 1e6, end: endUs, lookback: 'custom',
      tag: params.tags ? parseTags(params.tags) : [],
    };
    const body = await api('/api/traces' + qs(query));
    const traces = (body.data || []).map(summarize).sort((a, b) => b.startMs - a.startMs);
    status(`${traces.length} traces`);
    results.replaceChildren(
      el('h2', {}, `${traces.length} trace${traces.length === 1 ? '' : 's'}`),
      table(['Trace', 'Root span', 'Services', 'Spans', 'Duration', 'Started'], traces.map((t) => [
        el('a', { href: `#/trace/${t.id}`, class: 'mono' }, t.id),
        t.root, t.services.join(', '), String(t.spans), fmtDurUs(t.durationUs), fmtTimeMs(t.startMs),
      ])));
  }

  if (p.get('service')) {
    await loadOperations();
    await run(Object.fromEntries(p.entries()));
  } else {
    results.appendChild(el('p', { class: 'muted' }, 'Choose a service and find traces.'));
  }
}
