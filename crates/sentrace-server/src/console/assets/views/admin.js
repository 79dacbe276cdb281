// #/admin: tokens, signed sources and keys (read-only), and the audit log search. Each part
// shows what the caller's role may read; the server's policies decide.
import { api, el, field, table, qs, fmtTimeNs, heading, routeParams } from '../lib.js';

async function part(main, title, load) {
  const section = el('section', { 'aria-label': title }, el('h2', {}, title));
  main.appendChild(section);
  try {
    section.appendChild(await load());
  } catch (e) {
    if (e.status === 401) throw e;
    section.appendChild(el('p', { class: 'muted' }, e.status === 403 ? `Not allowed for your role (${e.message}).` : e.message));
  }
}

export async function render(main) {
  const p = routeParams();
  heading(main, 'Admin');
  await part(main, 'API tokens', async () => {
    const rows = (await api('/api/admin/tokens')).data || [];
    return table(['Id', 'Name', 'Tenant', 'Role', 'Created', 'Expires', 'State'], rows.map((t) => [
      el('code', {}, t.id), t.name || '', t.tenant, t.role, fmtTimeNs(t.created_ns), t.expires_ns ? fmtTimeNs(t.expires_ns) : 'never', t.revoked ? 'revoked' : 'active',
    ]));
  });
  await part(main, 'Signed sources', async () => {
    const v = await api('/api/sources');
    return el('div', {},
      el('p', {}, `Signatures ${v.require_signatures ? 'required' : 'optional'} for tenant ${v.tenant}.`),
      table(['Source', 'Registered', 'Last sequence', 'Last seen', 'Missing batches'], (v.sources || []).map((s) => [
        s.name, s.registered ? 'yes' : 'no', s.last_sequence ?? '', s.last_seen_unix_nanos ? fmtTimeNs(s.last_seen_unix_nanos) : '', String(s.missing_total ?? 0),
      ])));
  });
  await part(main, 'Keys', async () => {
    const rows = (await api('/api/admin/keys')).data || [];
    return table(['Purpose', 'Key id', 'Algorithm', 'Public key', 'Created'], rows.map((k) => [
      k.purpose, el('code', {}, k.key_id), k.algorithm, el('code', {}, k.public_key), fmtTimeNs(k.created_ns),
    ]));
  });
  await part(main, 'Audit log', async () => {
    const since = el('input', { name: 'since', type: 'text', value: p.get('since') || '24h' });
    const principal = el('input', { name: 'principal', type: 'text', value: p.get('principal') || '' });
    const trace = el('input', { name: 'trace', type: 'text', value: p.get('trace') || '' });
    const form = el('form', { class: 'filters', 'aria-label': 'Audit log search' },
      field('Since (24h, 7d or RFC 3339)', since), field('Principal', principal), field('Trace id', trace),
      el('div', {}, el('button', { type: 'submit' }, 'Search audit log')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      window.location.hash = '#/admin' + qs({ since: since.value.trim(), principal: principal.value.trim(), trace: trace.value.trim() });
    });
    const body = await api('/api/audit' + qs({ since: since.value, principal: principal.value, trace: trace.value, limit: 200 }));
    const rows = (body.data || []).map((e) => e.record || e).reverse();
    return el('div', {}, form, table(['Time', 'Principal', 'Role', 'Action', 'Endpoint', 'Outcome', 'Traces'], rows.map((r) => [
      fmtTimeNs(r.time_unix_nanos), r.principal, r.role || '', r.action, r.endpoint, String(r.outcome) + (r.reason ? `: ${r.reason}` : ''), (r.trace_ids || []).length ? String(r.trace_ids.length) : '',
    ]), body.truncated ? 'Only the newest 200 records are shown.' : null));
  });
}
