// Shared helpers of the console views. The DOM is built with createElement and textContent
// only: nothing that comes from a trace or a finding is ever parsed as HTML.

export const ctx = { session: null };

// el('tag', {class, id, href, ...attributes}, child, ...): children are nodes or text.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'href') node.setAttribute('href', safeHref(v));
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k.startsWith('on') || k === 'style' || k === 'srcdoc') throw new Error('refused attribute ' + k);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

// Only in-app hash links are made from data.
function safeHref(v) {
  const s = String(v);
  return s.startsWith('#/') ? s : '#/';
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function status(msg) {
  document.getElementById('status').textContent = msg || '';
}

export function alertError(msg) {
  document.getElementById('alert').textContent = msg || '';
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Calls the server's JSON API with the session cookie; state-changing calls carry the
// session's CSRF token. A 401 means the session ended: back to the login page.
export async function api(path, opts = {}) {
  const method = opts.method || 'GET';
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && ctx.session) headers['X-CSRF-Token'] = ctx.session.csrf;
  const resp = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store' });
  if (resp.status === 401) {
    window.location.assign('/console/login');
    throw new ApiError(401, 'session ended');
  }
  const type = resp.headers.get('content-type') || '';
  const body = type.includes('json') ? await resp.json() : await resp.text();
  if (!resp.ok) {
    let msg = typeof body === 'string' ? body.trim() : (body && body.error) || '';
    if (!msg && body && Array.isArray(body.errors) && body.errors.length) msg = body.errors[0].msg;
    throw new ApiError(resp.status, `${method} ${path.split('?')[0]}: ${resp.status} ${msg}`);
  }
  return body;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else if (v !== undefined && v !== null && v !== '') u.append(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export function fmtTimeNs(ns) {
  if (ns === undefined || ns === null) return '';
  const ms = Number(BigInt(ns) / 1000000n);
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function fmtTimeMs(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : '';
}

export function fmtDurUs(us) {
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

// A labelled input inside a <div> (every input has a label).
export function field(label, input) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  input.id = id;
  return el('div', {}, el('label', { for: id }, label), input);
}

export function select(name, options, value) {
  const s = el('select', { name });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    const opt = el('option', { value: v }, text);
    if (String(v) === String(value ?? '')) opt.selected = true;
    s.appendChild(opt);
  }
  return s;
}

export function table(headers, rows, caption) {
  return el('table', {},
    caption ? el('caption', { class: 'muted' }, caption) : null,
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

export function kvTable(pairs) {
  return el('table', { class: 'kv' },
    el('tbody', {}, pairs.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)))));
}

export function sevBadge(sev) {
  const s = String(sev || '').toLowerCase();
  return el('span', { class: `sev sev-${s.replace(/[^a-z]/g, '')}` }, sev || '?');
}

export function heading(main, text) {
  const h = el('h1', { tabindex: '-1' }, text);
  main.appendChild(h);
  return h;
}

// Params of the current hash route: '#/search?service=a' → {service: 'a'}.
export function routeParams() {
  const h = window.location.hash;
  const i = h.indexOf('?');
  return new URLSearchParams(i >= 0 ? h.slice(i + 1) : '');
}
