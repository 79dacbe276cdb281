// #/findings: detection findings (OCSF) with filters on severity, family and trace.
import { api, el, field, select, table, qs, fmtTimeMs, heading, routeParams, sevBadge, status } from '../lib.js';

const SEVERITIES = [['', 'any'], ['info', 'info'], ['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['critical', 'critical']];

export function traceOf(f) {
  for (const e of f.evidences || []) if (e.data && e.data.trace_id) return e.data.trace_id;
  return null;
}

export async function render(main) {
  const p = routeParams();
  heading(main, 'Findings');
  const severity = select('severity', SEVERITIES, p.get('severity'));
  const family = el('input', { name: 'family', type: 'text', placeholder: 'sqli, xss, …', value: p.get('family') || '' });
  const trace = el('input', { name: 'trace_id', type: 'text', placeholder: 'trace id (hex)', value: p.get('trace_id') || '' });
  const limit = el('input', { name: 'limit', type: 'number', min: '1', max: '1000', value: p.get('limit') || '100' });
  const form = el('form', { class: 'filters', 'aria-label': 'Finding filters' },
    field('Lowest severity', severity), field('Family', family), field('Trace id', trace), field('Limit', limit),
    el('div', {}, el('button', { type: 'submit' }, 'Filter')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    window.location.hash = '#/findings' + qs({ severity: severity.value, family: family.value.trim(), trace_id: trace.value.trim(), limit: limit.value });
  });
  main.appendChild(form);
  let body;
  try {
    body = await api('/api/findings' + qs({ severity: p.get('severity'), family: p.get('family'), trace_id: p.get('trace_id'), limit: p.get('limit') || '100' }));
  } catch (e) {
    if (e.status === 404) {
      main.appendChild(el('p', { class: 'muted' }, e.message));
      return;
    }
    throw e;
  }
  const list = body.data || [];
  status(`${list.length} findings`);
  main.appendChild(el('h2', {}, `${list.length} finding${list.length === 1 ? '' : 's'}`));
  main.appendChild(table(['Time', 'Severity', 'Finding', 'Family', 'Service', 'Trace'], list.map((f) => {
    const uid = (f.finding_info && f.finding_info.uid) || (f.metadata && f.metadata.uid) || '';
    const t = traceOf(f);
    return [
      fmtTimeMs(f.time),
      sevBadge(f.severity),
      el('a', { href: `#/finding/${encodeURIComponent(uid)}` }, (f.finding_info && f.finding_info.title) || uid),
      ((f.finding_info && f.finding_info.types) || []).join(', '),
      ((f.resources || []).find((r) => r.type === 'service') || {}).name || '',
      t ? el('a', { href: `#/trace/${t}`, class: 'mono' }, t.slice(0, 16) + '…') : '',
    ];
  })));
}
