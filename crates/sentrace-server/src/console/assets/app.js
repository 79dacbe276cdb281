// The console shell: loads the session, routes hash URLs to one view module each.
import { api, ctx, clear, el, status, alertError } from './lib.js';

const VIEWS = {
  search: './views/search.js',
  trace: './views/trace.js',
  findings: './views/findings.js',
  finding: './views/finding.js',
  map: './views/map.js',
  exposure: './views/exposure.js',
  integrity: './views/integrity.js',
  admin: './views/admin.js',
};

async function route() {
  const hash = window.location.hash;
  if (!hash.startsWith('#/')) {
    if (!hash) window.location.replace('#/search');
    return;
  }
  const [path] = hash.slice(2).split('?');
  const [name, ...rest] = path.split('/');
  const view = VIEWS[name] ? name : 'search';
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').slice(2);
    if (target === view || (view === 'trace' && target === 'search') || (view === 'finding' && target === 'findings')) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  delete document.body.dataset.waterfall;
  const main = clear(document.getElementById('main'));
  main.setAttribute('aria-busy', 'true');
  alertError('');
  status('Loading…');
  try {
    const mod = await import(VIEWS[view]);
    await mod.render(main, rest.map(decodeURIComponent));
    status('');
  } catch (e) {
    status('');
    if (e && e.status === 401) return;
    alertError(String(e && e.message ? e.message : e));
    main.appendChild(el('p', { class: 'error' }, String(e && e.message ? e.message : e)));
  }
  main.setAttribute('aria-busy', 'false');
  const h = main.querySelector('h1');
  if (h) h.focus();
}

async function logout() {
  try {
    await api('/console/logout', { method: 'POST' });
  } catch (e) {
    // The session is gone either way on the server after a 401.
  }
  window.location.assign('/console/login');
}

async function start() {
  ctx.session = await api('/console/session');
  const s = ctx.session;
  document.getElementById('who').textContent = `${s.principal} · ${s.role} · tenant ${s.tenant}`;
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  await route();
}

start().catch((e) => alertError(String(e && e.message ? e.message : e)));
