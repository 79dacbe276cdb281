// #/trace/<id>: the waterfall of one trace (spans as the API returns them, masked values
// included) and the details of the selected span.
import { api, el, clear, kvTable, fmtDurUs, fmtTimeMs, heading, qs } from '../lib.js';

function valueText(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// Spans in tree order (parents before children, siblings by start time) with their depth.
function ordered(spans) {
  const byId = new Map(spans.map((s) => [s.spanID, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    const ref = (s.references || []).find((r) => r.refType === 'CHILD_OF' && byId.has(r.spanID));
    if (ref) {
      if (!children.has(ref.spanID)) children.set(ref.spanID, []);
      children.get(ref.spanID).push(s);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a, b) => a.startTime - b.startTime;
  const out = [];
  const seen = new Set();
  const stack = roots.sort(byStart).reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [s, depth] = stack.pop();
    if (seen.has(s.spanID)) continue;
    seen.add(s.spanID);
    out.push([s, depth]);
    const kids = (children.get(s.spanID) || []).slice().sort(byStart).reverse();
    for (const k of kids) stack.push([k, depth + 1]);
  }
  return out;
}

function isError(span) {
  return (span.tags || []).some((t) => (t.key === 'error' && t.value === true) || (t.key === 'otel.status_code' && t.value === 'ERROR'));
}

function details(span, trace) {
  const proc = (trace.processes || {})[span.processID] || { serviceName: '?', tags: [] };
  const parts = [
    el('h2', { id: 'span-details-title' }, `${proc.serviceName}: ${span.operationName}`),
    kvTable([
      ['span id', span.spanID],
      ['start', `${fmtTimeMs(Math.floor(span.startTime / 1000))} (+${span.startTime % 1000} µs)`],
      ['duration', fmtDurUs(span.duration)],
      ...(span.references || []).map((r) => [r.refType, `${r.traceID}/${r.spanID}`]),
    ]),
    el('h3', {}, 'Attributes'),
    (span.tags || []).length ? kvTable(span.tags.map((t) => [t.key, valueText(t.value)])) : el('p', { class: 'muted' }, 'none'),
    el('h3', {}, 'Events'),
  ];
  if ((span.logs || []).length) {
    for (const log of span.logs) {
      parts.push(el('p', { class: 'muted' }, fmtTimeMs(Math.floor(log.timestamp / 1000))));
      parts.push(kvTable((log.fields || []).map((f) => [f.key, valueText(f.value)])));
    }
  } else {
    parts.push(el('p', { class: 'muted' }, 'none'));
  }
  parts.push(el('h3', {}, 'Resource'));
  parts.push(kvTable([['service.name', proc.serviceName], ...(proc.tags || []).map((t) => [t.key, valueText(t.value)])]));
  return parts;
}

export async function render(main, [id]) {
  document.body.dataset.waterfall = 'loading';
  performance.clearMarks();
  performance.clearMeasures();
  performance.mark('trace-fetch-start');
  heading(main, `Trace ${id || ''}`);
  if (!id || !/^[0-9a-fA-F]{1,32}$/.test(id)) throw new Error('a trace id is 1 to 32 hex digits');
  const body = await api(`/api/traces/${encodeURIComponent(id)}`);
  performance.mark('trace-fetched');
  const trace = (body.data || [])[0];
  if (!trace || !(trace.spans || []).length) {
    main.appendChild(el('p', {}, 'No such trace, or nothing in it that you may read.'));
    return;
  }
  const spans = trace.spans;
  let t0 = Infinity;
  let t1 = 0;
  for (const s of spans) {
    t0 = Math.min(t0, s.startTime);
    t1 = Math.max(t1, s.startTime + s.duration);
  }
  const total = Math.max(t1 - t0, 1);
  const services = new Set(spans.map((s) => ((trace.processes || {})[s.processID] || {}).serviceName));
  main.appendChild(el('p', { class: 'trace-head' },
    el('span', {}, `Started ${fmtTimeMs(Math.floor(t0 / 1000))}`),
    el('span', {}, `Duration ${fmtDurUs(total)}`),
    el('span', {}, `${spans.length} spans`),
    el('span', {}, `${services.size} services`),
    el('a', { href: `#/findings${qs({ trace_id: trace.traceID })}` }, 'Findings of this trace')));

  const panel = el('section', { class: 'details', 'aria-live': 'polite', 'aria-label': 'Span details' },
    el('p', { class: 'muted' }, 'Select a span (click, or Enter on a focused row) to see its attributes.'));
  const list = el('div', { class: 'waterfall', role: 'listbox', 'aria-label': 'Spans of the trace, in tree order' });
  const frag = document.createDocumentFragment();
  let selected = null;
  const select = (row, span) => {
    if (selected) selected.setAttribute('aria-selected', 'false');
    selected = row;
    row.setAttribute('aria-selected', 'true');
    clear(panel).append(...details(span, trace));
  };
  for (const [span, depth] of ordered(spans)) {
    const proc = (trace.processes || {})[span.processID] || {};
    const left = ((span.startTime - t0) / total) * 100;
    const width = Math.max((span.duration / total) * 100, 0.15);
    const name = el('div', { class: 'name' }, el('span', { class: 'svc' }, proc.serviceName || '?'), span.operationName);
    name.style.paddingLeft = `${4 + Math.min(depth, 40) * 12}px`;
    const bar = el('div', { class: isError(span) ? 'bar err' : 'bar' });
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    // The duration after the bar, or inside it (white) when the bar reaches the right edge.
    const inside = left + width > 85;
    const dur = el('span', { class: inside ? 'dur in' : 'dur' }, fmtDurUs(span.duration));
    dur.style.left = `${inside ? left + 0.3 : left + width + 0.3}%`;
    const row = el('div', {
      class: 'row', role: 'option', tabindex: '0', 'aria-selected': 'false',
      'aria-label': `${proc.serviceName || '?'} ${span.operationName}, ${fmtDurUs(span.duration)}`,
      'data-span-id': span.spanID,
    }, name, el('div', { class: 'lane' }, bar, dur));
    row.addEventListener('click', () => select(row, span));
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(row, span); }
      else if (ev.key === 'ArrowDown' && row.nextElementSibling) { ev.preventDefault(); row.nextElementSibling.focus(); }
      else if (ev.key === 'ArrowUp' && row.previousElementSibling) { ev.preventDefault(); row.previousElementSibling.focus(); }
    });
    frag.appendChild(row);
  }
  list.appendChild(frag);
  main.append(list, panel);
  performance.mark('waterfall-rendered');
  performance.measure('waterfall', 'trace-fetched', 'waterfall-rendered');
  performance.measure('trace-total', 'trace-fetch-start', 'waterfall-rendered');
  // The first frame painted with the rows in it.
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark('waterfall-painted');
    performance.measure('waterfall-paint', 'trace-fetch-start', 'waterfall-painted');
    document.body.dataset.waterfall = 'ready';
  }, 0));
}
