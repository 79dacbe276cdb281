// Drives Debian's chromium through the Sentrace web console with playwright-core (no
// downloaded browser). Run by tests/interop/test_console.py, which starts the server, sends
// traces with the OpenTelemetry Python SDK and passes what to look for in the environment:
//
//   CONSOLE_URL         https://localhost:PORT
//   CONSOLE_CA          the server's CA certificate (PEM)
//   CONSOLE_TOKEN       an API token to log in with
//   CONSOLE_SERVICE     the service that sent CONSOLE_TRACE_ID
//   CONSOLE_TRACE_ID    a trace whose root span has user.email = CONSOLE_EMAIL
//   CONSOLE_EMAIL       the original value, which must never appear in the page
//   CONSOLE_ATTACK_TRACE_ID  a trace that raised a finding
//   CONSOLE_BIG_TRACE_ID     a trace of 1,000 spans (waterfall timing)
//   CONSOLE_ARTIFACTS   where screenshots go
//   CHROMIUM            the browser (default /usr/bin/chromium)
//
// Fails (exit 1) on any console error, page error or CSP violation. Prints the page weight
// and the waterfall timings as JSON on the last line.

import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} must be set`);
  return v;
};
const URL_ = env('CONSOLE_URL').replace(/\/$/, '');
const CA = readFileSync(env('CONSOLE_CA'));
const TOKEN = env('CONSOLE_TOKEN');
const SERVICE = env('CONSOLE_SERVICE');
const TRACE = env('CONSOLE_TRACE_ID');
const EMAIL = env('CONSOLE_EMAIL');
const ATTACK_TRACE = env('CONSOLE_ATTACK_TRACE_ID');
const BIG_TRACE = env('CONSOLE_BIG_TRACE_ID');
const ARTIFACTS = env('CONSOLE_ARTIFACTS');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Endpoints the security views call that a server may not have yet (they fall back): a 404
// from them is the server saying so, not a console fault.
const OPTIONAL = [/^\/api\/integrity$/, /^\/api\/findings\/[^/]+$/, /^\/api\/map$/, /^\/api\/exposure$/, /^\/api\/admin\/(tokens|keys)$/];

function fail(msg) {
  console.error(`console test FAILED: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

// A GET with the server's CA and `cookie`, outside the browser: its status.
function getStatus(path, cookie) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${URL_}${path}`, { ca: CA, headers: cookie ? { cookie } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
  });
}

// The SPKI hash of the certificate the server presents, after Node has verified it against
// the CA: Chromium is then told to accept exactly that key (--ignore-certificate-errors-spki-list).
async function serverSpki() {
  const u = new URL(URL_);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), ca: CA, servername: u.hostname, rejectUnauthorized: true }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    s.on('error', reject);
  });
}

let page = null;

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const spki = await serverSpki();
  const profile = mkdtempSync(join(tmpdir(), 'sentrace-console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`],
    viewport: { width: 1400, height: 900 },
  });
  const problems = [];
  const allowed404 = [];
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('response', (r) => { if (r.status() >= 300) console.log(`  ${r.request().method()} ${new URL(r.url()).pathname} → ${r.status()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    const loc = msg.location();
    let path = '';
    try { path = new URL(loc.url).pathname; } catch (_) { path = ''; }
    if (msg.type() === 'error' && /status of 404/.test(msg.text()) && OPTIONAL.some((r) => r.test(path))) {
      allowed404.push(path);
      return;
    }
    if (msg.type() === 'error' || /Content.Security.Policy/i.test(msg.text())) problems.push(`console ${msg.type()}: ${msg.text()} (${loc.url})`);
  });
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const step = (name) => console.log(`step: ${name}`);
  // A view is rendered when the shell clears aria-busy on <main>.
  const goView = async (hash) => {
    await page.evaluate(() => { const m = document.getElementById('main'); if (m) m.setAttribute('aria-busy', 'true'); });
    await page.goto(`${URL_}/${hash}`);
    await page.waitForSelector('main[aria-busy="false"]', { timeout: 30000 });
  };

  // 1. Without a session the console sends us to the login page.
  step('login');
  await page.goto(`${URL_}/`);
  if (!page.url().endsWith('/console/login')) fail(`expected the login page, got ${page.url()}`);
  await page.getByLabel('API token').fill(TOKEN);
  await shot('01-login');
  await Promise.all([page.waitForURL(/#\/search/), page.getByRole('button', { name: 'Log in' }).click()]);
  await page.getByText(/tenant /).waitFor();

  // 2. Search for the SDK's trace.
  step('search');
  await page.getByLabel('Service').selectOption(SERVICE);
  await page.getByRole('button', { name: 'Find traces' }).click();
  const link = page.getByRole('link', { name: TRACE });
  await link.waitFor({ timeout: 15000 });
  await shot('02-search');

  // 3. Open it and see the masked attribute, never the original value.
  step('trace');
  await page.evaluate(() => { delete document.body.dataset.waterfall; });
  await link.click();
  await page.waitForSelector('body[data-waterfall="ready"]');
  await page.locator('.waterfall .row', { hasText: 'GET /checkout' }).first().click();
  const row = page.locator('.details tr', { hasText: 'user.email' });
  await row.first().waitFor();
  const shown = (await row.first().locator('td').nth(1).textContent()) || '';
  if (!shown || shown.includes(EMAIL)) fail(`user.email shows ${JSON.stringify(shown)}; expected the masked value`);
  if ((await page.content()).includes(EMAIL)) fail('the original email appears in the page');
  console.log(`masked user.email shown as ${shown}`);
  // Keyboard: the rows take focus and Enter opens the details.
  await page.locator('.waterfall .row').first().focus();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await shot('03-trace');

  // 4. Findings: the attack trace raised one; open it and its trace.
  step('findings');
  await page.goto(`${URL_}/#/findings`);
  const findingLink = page.locator('table a[href^="#/finding/"]').first();
  await findingLink.waitFor({ timeout: 15000 });
  await shot('04-findings');
  await page.goto(`${URL_}/#/findings?trace_id=${ATTACK_TRACE}`);
  const attackFinding = page.locator('table a[href^="#/finding/"]').first();
  await attackFinding.waitFor({ timeout: 15000 });
  await attackFinding.click();
  await page.getByRole('heading', { name: 'Evidence' }).waitFor();
  await page.getByRole('heading', { name: 'Response actions' }).waitFor();
  await page.waitForSelector('main[aria-busy="false"]');
  await shot('05-finding');
  // Undo, where an action is still active and the role may lift it.
  const undo = page.getByRole('button', { name: 'Undo' });
  if (await undo.count()) {
    step('undo');
    await undo.first().click();
    await page.getByText('Action undone').waitFor();
    await page.locator('td', { hasText: 'undone' }).first().waitFor();
    await shot('05b-undone');
  }
  await page.evaluate(() => { delete document.body.dataset.waterfall; });
  await page.locator(`a[href="#/trace/${ATTACK_TRACE}"]`).first().click();
  await page.waitForSelector('body[data-waterfall="ready"]');
  await shot('06-finding-trace');

  // 5. Integrity, then the other views (for CSP and errors).
  step('integrity');
  await goView('#/integrity');
  await page.getByRole('heading', { name: 'Latest checkpoint' }).or(page.getByText('No checkpoint has been')).first().waitFor({ timeout: 15000 });
  await shot('07-integrity');
  if (!allowed404.includes('/api/integrity')) {
    step('verify now');
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.getByText('Verification finished').waitFor({ timeout: 60000 });
    await page.getByText(/^(OK|PROBLEMS FOUND)$/).waitFor();
    if (await page.getByText('PROBLEMS FOUND').count()) fail('verification of an untouched log found problems');
    await shot('07b-verified');
  }
  for (const [view, ready] of [['map', 'Service map'], ['exposure', 'Exposure'], ['admin', 'Audit log']]) {
    step(view);
    await goView(`#/${view}`);
    await page.getByRole('heading', { name: ready }).first().waitFor();
    if (view === 'map' && !(await page.locator('svg line.edge').count())) fail('the service map shows no edge');
    await shot(`08-${view}`);
  }

  // 6. Measure: the 1,000-span waterfall, and the bytes of console files per page.
  step('waterfall of 1,000 spans');
  await page.evaluate(() => { delete document.body.dataset.waterfall; });
  await page.goto(`${URL_}/#/trace/${BIG_TRACE}`);
  await page.waitForSelector('body[data-waterfall="ready"]', { timeout: 30000 });
  const rows = await page.locator('.waterfall .row').count();
  if (rows !== 1000) fail(`the big trace shows ${rows} rows, expected 1000`);
  const timing = await page.evaluate(() => {
    const get = (n) => (performance.getEntriesByName(n)[0] || {}).duration;
    return { render_ms: get('waterfall'), fetch_and_render_ms: get('trace-total'), to_paint_ms: get('waterfall-paint') };
  });
  await shot('09-big-trace');
  // A fresh load of each page with an empty cache: the document plus every console file.
  const weights = {};
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  for (const view of ['search', 'findings', 'map', 'integrity', 'admin', `trace/${TRACE}`]) {
    await page.goto('about:blank');
    await page.goto(`${URL_}/#/${view}`);
    await page.waitForLoadState('networkidle');
    weights[view.split('/')[0]] = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const files = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/console/a/'));
      return (nav ? nav.decodedBodySize : 0) + files.reduce((n, r) => n + r.decodedBodySize, 0);
    });
  }
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });

  // 7. Log out, and be refused afterwards: the browser has no cookie any more, and the old
  // cookie, replayed from outside, names no session on the server.
  step('logout');
  const cookie = (await context.cookies(URL_)).find((c) => c.name === 'sentrace_session');
  if (!cookie || !cookie.httpOnly || !cookie.secure || cookie.sameSite !== 'Strict') fail(`session cookie ${JSON.stringify(cookie)}`);
  const replay = `sentrace_session=${cookie.value}`;
  if ((await getStatus('/console/session', replay)) !== 200) fail('the session cookie does not work before logout');
  await Promise.all([page.waitForURL(/\/console\/login/), page.getByRole('button', { name: 'Log out' }).click()]);
  await shot('10-logged-out');
  if ((await context.cookies(URL_)).some((c) => c.name === 'sentrace_session')) fail('the cookie survived logout');
  for (const path of ['/console/session', '/api/services']) {
    const status = await getStatus(path, replay);
    if (status !== 401) fail(`${path} after logout answered ${status}`);
  }
  await page.goto(`${URL_}/#/search`);
  if (!page.url().includes('/console/login')) fail(`after logout / shows ${page.url()}`);

  await context.close();
  rmSync(profile, { recursive: true, force: true });
  if (problems.length) fail(`${problems.length} console problems:\n  ${problems.join('\n  ')}`);
  const result = { page_weight_bytes: weights, waterfall_1000_spans: timing, optional_endpoints_absent: [...new Set(allowed404)] };
  console.log(JSON.stringify(result));
}

main().catch(async (e) => {
  console.error(e && e.stack ? e.stack : String(e));
  if (page) {
    try {
      await page.screenshot({ path: join(ARTIFACTS, 'failure.png'), fullPage: true });
      console.error(`page at failure: ${page.url()}\n${(await page.locator('body').innerText()).slice(0, 2000)}`);
    } catch (_) { /* the browser is gone */ }
  }
  process.exit(1);
});
