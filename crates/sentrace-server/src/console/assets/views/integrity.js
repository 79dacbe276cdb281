// #/integrity: the tenant's latest signed checkpoint, witness cosignatures, the last
// verification result and a "Verify now" button.
import { api, ctx, el, kvTable, table, fmtTimeNs, heading, status, alertError } from '../lib.js';

function show(section, d) {
  const parts = [];
  const cp = d.checkpoint;
  parts.push(el('h2', {}, 'Latest checkpoint'));
  if (cp) {
    parts.push(kvTable([['origin', cp.origin], ['size (batches)', String(cp.size)], ['root hash', el('code', {}, cp.root_hash)], ['signed', fmtTimeNs(cp.time_ns)]]));
    parts.push(el('pre', { class: 'note', 'aria-label': 'Signed checkpoint note' }, cp.signed_note || ''));
  } else {
    parts.push(el('p', { class: 'muted' }, 'No checkpoint has been signed yet for this tenant.'));
  }
  parts.push(el('h2', {}, 'Witnesses'));
  const q = d.quorum || {};
  parts.push(el('p', {}, `Quorum: ${q.reached ?? 0} of ${q.required ?? 0} required cosignatures `, q.required && q.reached >= q.required ? el('span', { class: 'ok' }, 'reached') : el('span', { class: q.required ? 'bad' : 'muted' }, q.required ? 'not reached' : '(no witnesses configured)')));
  if ((d.witnesses || []).length) {
    parts.push(table(['Witness', 'Key id', 'Cosigned', 'Time'], d.witnesses.map((w) => [w.name, el('code', {}, w.key_id), w.cosigned ? el('span', { class: 'ok' }, 'yes') : el('span', { class: 'bad' }, 'no'), fmtTimeNs(w.time_ns)])));
  }
  parts.push(el('h2', {}, 'Last verification'));
  const v = d.last_verify;
  if (v) {
    parts.push(kvTable([
      ['result', v.ok ? el('span', { class: 'ok' }, 'OK') : el('span', { class: 'bad' }, 'PROBLEMS FOUND')],
      ['time', fmtTimeNs(v.time_ns)], ['entries checked', String(v.entries_checked)],
    ]));
    if ((v.problems || []).length) parts.push(el('ul', {}, v.problems.map((p) => el('li', {}, p))));
  } else {
    parts.push(el('p', { class: 'muted' }, 'Not verified since the server started.'));
  }
  section.replaceChildren(...parts);
}

// Servers without /api/integrity: the signed checkpoint note from the log's well-known route.
async function fallback(section) {
  const tenant = encodeURIComponent(ctx.session.tenant);
  let note;
  try {
    note = await api(`/.well-known/sentrace/log/${tenant}/checkpoint`);
  } catch (e) {
    if (e.status !== 404) throw e;
    section.replaceChildren(el('p', { class: 'muted' }, 'No checkpoint has been published for this tenant yet (or sealing is disabled).'));
    return;
  }
  const lines = String(note).split('\n');
  section.replaceChildren(
    el('h2', {}, 'Latest checkpoint'),
    kvTable([['origin', lines[0] || ''], ['size (batches)', lines[1] || ''], ['root hash', el('code', {}, lines[2] || '')]]),
    el('pre', { class: 'note', 'aria-label': 'Signed checkpoint note' }, String(note)),
    el('p', { class: 'muted' }, 'Witness status and verification are not offered by this server; run sentrace verify.'));
}

export async function render(main) {
  heading(main, 'Integrity');
  const section = el('section', { 'aria-label': 'Integrity status' });
  const button = el('button', { type: 'button', class: 'primary' }, 'Verify now');
  main.append(el('div', { class: 'actions' }, button, el('span', { class: 'muted' }, 'Re-checks this tenant’s transparency log against its signed checkpoint.')), section);
  let legacy = false;
  try {
    show(section, (await api('/api/integrity')).data || {});
  } catch (e) {
    if (e.status !== 404) throw e;
    legacy = true;
    await fallback(section);
  }
  button.addEventListener('click', async () => {
    button.disabled = true;
    status('Verifying…');
    try {
      if (legacy) throw new Error('this server has no POST /api/integrity/verify; run sentrace verify');
      show(section, (await api('/api/integrity/verify', { method: 'POST' })).data || {});
      status('Verification finished');
    } catch (e) {
      status('');
      alertError(e.message);
    } finally {
      button.disabled = false;
    }
  });
}
