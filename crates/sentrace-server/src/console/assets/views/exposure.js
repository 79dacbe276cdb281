// #/exposure: what minimization found, by service, kind and attribute key. Counts only:
// no value ever reaches this page.
import { api, el, field, table, qs, fmtTimeNs, heading, routeParams } from '../lib.js';

export async function render(main) {
  const p = routeParams();
  heading(main, 'Exposure');
  main.appendChild(el('p', { class: 'muted' }, 'Sensitive data the minimization policy found in incoming spans, and what it did. Values are never shown.'));
  const hours = el('input', { name: 'hours', type: 'number', min: '1', max: '2160', value: p.get('hours') || '24' });
  const form = el('form', { class: 'filters', 'aria-label': 'Exposure window' }, field('Last hours', hours), el('div', {}, el('button', { type: 'submit' }, 'Show')));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); window.location.hash = '#/exposure' + qs({ hours: hours.value }); });
  main.appendChild(form);
  const untilNs = BigInt(Date.now()) * 1000000n;
  const sinceNs = untilNs - BigInt(Number(hours.value) || 24) * 3600n * 1000000000n;
  let body;
  try {
    body = await api('/api/exposure' + qs({ since: sinceNs.toString(), until: untilNs.toString() }));
  } catch (e) {
    if (e.status === 404) {
      main.appendChild(el('p', { class: 'muted' }, 'This server has no exposure report (GET /api/exposure).'));
      return;
    }
    throw e;
  }
  const rows = (body.data || []).slice().sort((a, b) => b.count - a.count);
  main.appendChild(el('h2', {}, `${rows.length} exposure${rows.length === 1 ? '' : 's'}`));
  main.appendChild(table(['Service', 'Kind', 'Attribute key', 'Action', 'Count', 'First seen', 'Last seen'], rows.map((r) => [
    r.service, r.kind, el('code', {}, r.key), r.action || '', String(r.count), fmtTimeNs(r.first_seen_ns), fmtTimeNs(r.last_seen_ns),
  ])));
}
