// #/finding/<id>: one finding, its evidence linked to the trace, and its response actions
// with Undo where the caller may lift them.
import { api, ctx, el, kvTable, table, fmtTimeMs, fmtTimeNs, heading, sevBadge, status, alertError } from '../lib.js';
import { traceOf } from './findings.js';

const UNDO_ROLES = new Set(['admin', 'security-analyst', 'read']);

async function load(id) {
  try {
    return (await api(`/api/findings/${encodeURIComponent(id)}`)).data;
  } catch (e) {
    if (e.status !== 404) throw e;
    // Servers without GET /api/findings/{id}: look the finding up in the list.
    const list = (await api('/api/findings?limit=1000')).data || [];
    return list.find((f) => (f.finding_info && f.finding_info.uid) === id || (f.metadata && f.metadata.uid) === id) || null;
  }
}

export async function render(main, [id]) {
  heading(main, 'Finding');
  const f = await load(id);
  if (!f) {
    main.appendChild(el('p', {}, 'No such finding, or not one you may read.'));
    return;
  }
  const info = f.finding_info || {};
  const t = traceOf(f);
  main.appendChild(el('h2', {}, sevBadge(f.severity), ' ', info.title || id));
  main.appendChild(el('p', {}, f.message || ''));
  main.appendChild(kvTable([
    ['id', info.uid || id],
    ['time', fmtTimeMs(f.time)],
    ['severity', f.severity || ''],
    ['confidence', f.confidence || ''],
    ['family', (info.types || []).join(', ')],
    ['rule', (info.analytic && info.analytic.uid) || ''],
    ['technique', ((info.attacks || [])[0] || {}).technique ? `${info.attacks[0].technique.uid} ${info.attacks[0].technique.name || ''}` : ''],
    ['service', ((f.resources || []).find((r) => r.type === 'service') || {}).name || ''],
    ['source address', (f.src_endpoint && f.src_endpoint.ip) || ''],
    ['trace', t ? el('a', { href: `#/trace/${t}`, class: 'mono' }, t) : 'none'],
  ]));
  main.appendChild(el('h2', {}, 'Evidence'));
  main.appendChild(table(['Attribute', 'Snippet (minimized)', 'Reason', 'Span'], (f.evidences || []).map((e) => {
    const d = e.data || {};
    return [d.attribute || e.name || '', d.snippet || '', d.reason || '', d.trace_id ? el('a', { href: `#/trace/${d.trace_id}`, class: 'mono' }, d.span_id || d.trace_id) : ''];
  })));
  main.appendChild(el('h2', {}, 'Response actions'));
  const section = el('section', { 'aria-label': 'Response actions' });
  main.appendChild(section);
  await actions(section, info.uid || id);
}

async function actions(section, uid) {
  let body;
  try {
    body = await api('/api/responses');
  } catch (e) {
    section.replaceChildren(el('p', { class: 'muted' }, e.status === 404 || e.status === 403 ? e.message : String(e.message)));
    return;
  }
  const mine = (body.actions || []).filter((a) => a.finding_uid === uid);
  if (!mine.length) {
    section.replaceChildren(el('p', { class: 'muted' }, 'No response action was taken for this finding.'));
    return;
  }
  const mayUndo = ctx.session && UNDO_ROLES.has(ctx.session.role);
  section.replaceChildren(table(['Action', 'Rule', 'Time', 'Status', ''], mine.map((a) => {
    let undo = '';
    if (mayUndo && a.status === 'active') {
      undo = el('button', { type: 'button' }, 'Undo');
      undo.addEventListener('click', async () => {
        undo.disabled = true;
        status('Undoing…');
        try {
          await api(`/api/responses/${encodeURIComponent(a.id)}/undo`, { method: 'POST' });
          status('Action undone');
          await actions(section, uid);
        } catch (e) {
          undo.disabled = false;
          status('');
          alertError(e.message);
        }
      });
    }
    const what = a.action && typeof a.action === 'object' ? (a.action.kind || a.action.type || Object.keys(a.action)[0] || '') : String(a.action || '');
    return [what, a.response_rule || '', fmtTimeNs(a.time_unix_nanos), a.status, undo];
  })));
}
