// console.test.mjs - keyward's web console in Debian's Chromium (playwright-core): sign-in
// and sign-out, the README's zero-downtime rotation by clicking, renewals decided by an
// approver (never by the requester), the audit chain valid then broken, CSRF and session
// expiry refused, no request to anything but keyward, no console errors; screenshots of
// every page at 1440 and 390 px; page weight and time to interactive with 10 000
// credentials. Started by tests/integration/test_console.py, which starts keyward.
//
// Environment: KW_URL (http://127.0.0.1:PORT), KW_ADMIN_KEY, KW_DB (the SQLite file),
// KW_SHOTS (directory for screenshots), KW_BULK (credentials to add before measuring,
// default 10000). Prints "FIGURES {json}" last; exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const URL0 = process.env.KW_URL;
const ADMIN = process.env.KW_ADMIN_KEY;
const DB = process.env.KW_DB;
const SHOTS = process.env.KW_SHOTS;
const BULK = Number(process.env.KW_BULK ?? 10000);
assert.ok(URL0 && ADMIN && DB && SHOTS, 'KW_URL, KW_ADMIN_KEY, KW_DB and KW_SHOTS are needed');
const origin = new URL(URL0).origin;
mkdirSync(SHOTS, { recursive: true });

const log = (...a) => console.log('#', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the API, from the test's side (setup and checks) ----
async function call(method, path, body, key = ADMIN) {
  const r = await fetch(origin + path, { method, headers: { Authorization: `Bearer ${key}`,
    ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const t = await r.text();
  return { status: r.status, body: t ? JSON.parse(t) : null };
}
async function ok(method, path, body, key) {
  const r = await call(method, path, body, key);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
const verify = async (key) => (await ok('POST', '/v1/keys/verify', { key })).code;
const sql = (q) => execFileSync('sqlite3', [DB, q], { encoding: 'utf8' }).trim();

// ---- the browser ----
const profile = mkdtempSync(join(tmpdir(), 'kw-chromium-'));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS,
  headless: true, env: { ...process.env, HOME: profile } });
const foreign = [], errors = [], expected4xx = [];

async function newUser(width = 1440) {
  const ctx = await browser.newContext({ viewport: { width, height: width > 500 ? 900 : 844 },
    permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await ctx.newPage();
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) foreign.push(u);
  });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every 4xx fetch as "Failed to load resource"; the test provokes some
    // on purpose (guard refusals, forced 403s) and lists them; anything else is an error.
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) expected4xx.push(m.text());
    else errors.push('console: ' + m.text());
  });
  return { ctx, page };
}

async function signIn(page, key) {
  await page.goto(origin + '/console/');
  await page.getByLabel('Key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#top').waitFor({ state: 'visible' });
  assert.equal(await page.getByLabel('Key').inputValue(), '', 'the key field is emptied');
}

// The page has rendered its first view (and made its API calls).
const settled = (page) => page.waitForFunction(() => performance.getEntriesByName('kw:ready').length > 0);

async function dialogSubmit(page, fields, okName) {
  const d = page.locator('#dialog');
  await d.waitFor({ state: 'visible' });
  for (const [label, v] of Object.entries(fields)) await d.getByLabel(label, { exact: true }).fill(v);
  await d.getByRole('button', { name: okName, exact: true }).click();
}

async function shot(page, name) {
  for (const w of [1440, 390]) {
    await page.setViewportSize({ width: w, height: w > 500 ? 900 : 844 });
    await sleep(150);
    await page.screenshot({ path: join(SHOTS, `${name}-${w}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

const step = async (name, fn) => {
  const t0 = Date.now();
  await fn();
  log(`ok ${name} (${Date.now() - t0} ms)`);
};

const figures = {};
try {
  // ---- setup through the API ----
  const role = async (name, scope) => {
    const r = await ok('POST', '/v1/credentials', { name, owner: 'people@example.com', scopes: [scope] });
    return { secret: r.secret, cred: r.credential.id, key: r.key.id };
  };
  const operator = await role('console-operator', 'keyward:operator');
  const approver = await role('console-approver', 'keyward:approver');
  const auditor = await role('console-auditor', 'keyward:auditor');
  const rotator = await role('console-rotator', 'keyward:operator');
  const me = (await ok('POST', '/v1/keys/verify', { key: ADMIN })).credential_id;
  await ok('POST', '/v1/policies', { name: 'gated', renewal_requires_approval: true, alert_thresholds: ['30d', '7d'] });
  const gatedA = (await ok('POST', '/v1/credentials', { name: 'partner-feed', owner: 'feeds@example.com', policy: 'gated', lifetime: '20d' })).credential.id;
  const gatedB = (await ok('POST', '/v1/credentials', { name: 'legacy-export', owner: 'export@example.com', policy: 'gated', lifetime: '50d' })).credential.id;
  let searchApi;
  for (const [n, l] of [['search-api', '5d'], ['mobile-app', '40d'], ['reports', '75d']]) {
    const r = await ok('POST', '/v1/credentials', { name: n, owner: 'team@example.com', scopes: ['orders:read'], lifetime: l,
      contacts: n === 'search-api' ? [{ type: 'webhook', url: 'http://127.0.0.1:9/hook' }, { type: 'log' }] : [] });
    if (n === 'search-api') searchApi = r.credential.id;
  }

  const A = await newUser();
  const page = A.page;

  await step('sign-in page, a wrong key refused with the API detail', async () => {
    await page.goto(origin + '/console/');
    await page.getByLabel('Key').waitFor();
    await shot(page, 'signin');
    await page.getByLabel('Key').fill('kw_not_a_real_key_at_all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#signin-error').filter({ hasText: /./ }).waitFor();
    assert.match(await page.locator('#signin-error').innerText(), /key/i);
  });

  await step('sign in: a session cookie, the key kept nowhere', async () => {
    await signIn(page, ADMIN);
    await page.getByRole('heading', { name: 'Credentials' }).waitFor();
    const c = (await A.ctx.cookies()).find((x) => x.name === 'kw_session');
    assert.ok(c && c.httpOnly && c.sameSite === 'Strict', 'HttpOnly SameSite=Strict cookie');
    const stored = await page.evaluate(() => JSON.stringify([document.cookie, { ...localStorage }, { ...sessionStorage }]));
    assert.ok(!stored.includes(ADMIN.slice(-20)) && !stored.includes('kw_session'), 'nothing readable by scripts');
    const r = await page.evaluate(async () => {
      const x = await fetch('/console/');
      return [x.headers.get('content-security-policy'), x.headers.get('x-frame-options')];
    });
    assert.deepEqual(r, ["default-src 'self'", 'DENY']);
  });

  // The README's rotation, by an operator (not an admin), entirely by clicking
  const R = await newUser();
  const rp = R.page;
  await signIn(rp, rotator.secret);
  let OLD, NEW, credId;
  await step('rotation 1/4: create a credential by clicking; its secret shown once', async () => {
    await rp.getByRole('button', { name: 'New credential' }).click();
    await dialogSubmit(rp, { Name: 'billing-prod', Owner: 'ops@example.com', Scopes: 'orders:read' }, 'Create');
    await rp.locator('#new-secret').waitFor();
    OLD = (await rp.locator('#new-secret').innerText()).trim();
    credId = rp.url().split('/').pop();
    assert.equal(await verify(OLD), 'VALID');
    await rp.getByRole('button', { name: 'Copy' }).click();
    assert.equal(await rp.evaluate(() => navigator.clipboard.readText()), OLD);
    await rp.getByRole('button', { name: /I have stored it/ }).click();
    assert.equal(await rp.locator('#new-secret').count(), 0);
  });

  await step('rotation 2/4: generate the secondary key', async () => {
    await rp.getByRole('button', { name: 'Generate a secondary key' }).click();
    await dialogSubmit(rp, {}, 'Generate');
    await rp.locator('#new-secret').waitFor();
    NEW = (await rp.locator('#new-secret').innerText()).trim();
    assert.notEqual(NEW, OLD);
    assert.equal(await verify(OLD), 'VALID');
    assert.equal(await verify(NEW), 'VALID');
    await shot(rp, 'credential');
  });

  await step('rotation 3/4: invalidate the first, the "unused for" guard refusing first', async () => {
    const slot1 = rp.locator('section.slot').first();
    await slot1.getByRole('button', { name: 'Invalidate' }).click();
    await dialogSubmit(rp, { 'Refuse if used within': '1h', Reason: 'rotated to slot 2' }, 'Invalidate now');
    await rp.locator('#dialog-error').filter({ hasText: /./ }).waitFor();
    const refusal = await rp.locator('#dialog-error').innerText();
    assert.match(refusal, /used/i, 'the API detail is shown: ' + refusal);
    assert.equal(await verify(OLD), 'VALID', 'refused: nothing changed');
    await sleep(2200); // the old key's last use is now more than 2 s ago
    await rp.locator('#dialog').getByLabel('Refuse if used within').fill('2s');
    await rp.locator('#dialog').getByRole('button', { name: 'Invalidate now' }).click();
    await slot1.getByText('revoked').first().waitFor();
    assert.notEqual(await verify(OLD), 'VALID');
    assert.equal(await verify(NEW), 'VALID');
  });

  let ROLLED;
  await step('rotation 4/4: roll the secondary with overlap', async () => {
    const slot2 = rp.locator('section.slot').nth(1);
    await slot2.getByRole('button', { name: 'Roll with overlap' }).click();
    await dialogSubmit(rp, { Overlap: '1h' }, 'Roll');
    await rp.locator('#new-secret').waitFor();
    ROLLED = (await rp.locator('#new-secret').innerText()).trim();
    assert.equal(await verify(ROLLED), 'VALID');
    assert.equal(await verify(NEW), 'VALID', 'the rolled key works during the overlap');
    const k = (await ok('GET', `/v1/credentials/${credId}`)).keys.find((x) => x.slot === 2 && x.state === 'active');
    assert.ok(new Date(k.expires_at) - Date.now() <= 3600e3 + 5000, 'old key expires within the overlap');
    const acts = (await ok('GET', `/v1/audit?actor=${rotator.cred}&limit=50`)).items.map((r) => r.action);
    for (const a of ['credential.create', 'key.create', 'key.invalidate', 'key.roll', 'console.signin'])
      assert.ok(acts.includes(a), `audit has ${a}: ${acts}`);
    await R.ctx.close();
  });

  await step('CSRF: a change without the session token is refused', async () => {
    const codes = await page.evaluate(async () => {
      const post = (h) => fetch('/v1/credentials', { method: 'POST', headers: { 'Content-Type': 'application/json', ...h },
        body: JSON.stringify({ name: 'csrf-probe' }) }).then((r) => r.status);
      return [await post({}), await post({ 'X-CSRF-Token': 'f'.repeat(64) })];
    });
    assert.deepEqual(codes, [403, 403]);
    assert.equal((await ok('GET', '/v1/credentials?limit=1000')).items.filter((c) => c.name === 'csrf-probe').length, 0);
  });

  await step('renewals: the requester cannot decide, an approver approves and rejects', async () => {
    for (const id of [gatedA, gatedB]) {
      await page.goto(`${origin}/console/#/credentials/${id}`);
      await page.locator('section.slot').first().getByRole('button', { name: 'Renew' }).click();
      await dialogSubmit(page, { 'Extend by': '30d', Reason: 'contract extended' }, 'Renew');
      await page.getByText(/needs an approver/).waitFor();
    }
    await page.goto(`${origin}/console/#/renewals`);
    await page.getByText('Your own request: another approver must decide.').first().waitFor();
    await shot(page, 'renewals-own');
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'no Approve for own requests');
    const pending = (await ok('GET', '/v1/renewals?state=pending')).items;
    assert.equal(pending.length, 2);
    const forced = await page.evaluate(async (id) => {
      const s = await (await fetch('/console/api/session')).json();
      const r = await fetch(`/v1/renewals/${id}/approve`, { method: 'POST', headers: { 'X-CSRF-Token': s.csrf_token } });
      return [r.status, (await r.json()).detail];
    }, pending[0].id);
    assert.equal(forced[0], 403, 'own request forced: ' + forced);

    const B = await newUser();
    await signIn(B.page, approver.secret);
    await B.page.goto(`${origin}/console/#/credentials`);
    await B.page.getByRole('heading', { name: 'Credentials' }).waitFor();
    assert.equal(await B.page.getByRole('button', { name: 'New credential' }).count(), 0, 'approver: no create');
    assert.equal(await B.page.locator('#nav a[data-page="audit"]').isVisible(), false, 'approver: no audit page');
    await B.page.goto(`${origin}/console/#/renewals`);
    await B.page.getByRole('button', { name: 'Approve' }).first().waitFor();
    await shot(B.page, 'renewals');
    const rowA = B.page.locator('tr', { hasText: pending[0].key_id });
    await rowA.getByRole('button', { name: 'Approve' }).click();
    await dialogSubmit(B.page, { Note: 'approved by the console test' }, 'Approve');
    const rowB = B.page.locator('tr', { hasText: pending[1].key_id });
    await rowB.getByRole('button', { name: 'Reject' }).click();
    await dialogSubmit(B.page, { Note: 'not this time' }, 'Reject');
    await B.page.locator('#r-state').selectOption('');
    await B.page.getByText('approved by the console test').waitFor();
    await shot(B.page, 'renewals-decided');
    const states = Object.fromEntries((await ok('GET', '/v1/renewals')).items.map((r) => [r.id, [r.state, r.decided_by]]));
    assert.deepEqual(states[pending[0].id], ['approved', approver.cred]);
    assert.deepEqual(states[pending[1].id], ['rejected', approver.cred]);
    const acts = (await ok('GET', `/v1/audit?actor=${approver.cred}`)).items.map((r) => r.action);
    assert.ok(acts.includes('renewal.approve') && acts.includes('renewal.reject'), String(acts));
    await B.ctx.close();
  });

  await step('screenshots of every page', async () => {
    await page.goto(`${origin}/console/#/credentials`);
    await page.locator('table').waitFor();
    await shot(page, 'credentials');
    await page.getByLabel('Policy').selectOption('gated');
    await page.getByRole('link', { name: 'legacy-export' }).waitFor();
    await page.getByRole('link', { name: 'billing-prod' }).waitFor({ state: 'detached' });
    await page.getByLabel('Policy').selectOption('');
    await page.getByLabel('Search').fill('billing');
    await page.getByRole('link', { name: 'reports' }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: 'billing-prod' }).waitFor();
    await page.getByLabel('Search').fill('');
    await page.goto(`${origin}/console/#/expiring`);
    await page.locator('.tl-track').first().waitFor();
    await shot(page, 'expiring');
    await page.goto(`${origin}/console/#/policies`);
    await page.getByRole('cell', { name: 'gated' }).waitFor();
    await shot(page, 'policies');
    // the webhook on 127.0.0.1:9 refuses: its delivery fails (--delivery-max-age 10s) with
    // its attempts and last error, and Retry is offered
    for (let i = 0; i < 150; i++) {
      const ev = (await ok('GET', `/v1/events?credential_id=${searchApi}`)).items;
      if (ev.some((e) => (e.deliveries || []).some((d) => d.state === 'failed'))) break;
      await sleep(200);
    }
    await page.goto(`${origin}/console/#/credentials/${searchApi}`);
    await page.getByRole('link', { name: 'events and deliveries of this credential' }).click();
    await page.getByText('last error', { exact: false }).first().waitFor();
    await page.getByRole('button', { name: 'Retry' }).first().waitFor();
    await shot(page, 'events');
    // Retry requeues the failed delivery (it may fail again at once: the port is closed)
    const [retried] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/retry')),
      page.getByRole('button', { name: 'Retry' }).first().click()]);
    assert.equal(retried.status(), 200);
    assert.ok((await retried.json()).requeued >= 1, 'the delivery was requeued');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${origin}/console/#/credentials/${credId}`);
    await page.locator('section.slot').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'credential-dark-1440.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${origin}/console/#/audit`);
    await page.locator('#chain').waitFor();
    await shot(page, 'audit');
  });

  await step('sessions end: idle, maximum age, key revoked, sign-out', async () => {
    const O = await newUser(390);
    await signIn(O.page, operator.secret);
    await settled(O.page);
    sql(`UPDATE console_sessions SET last_seen_at = last_seen_at - 1801 WHERE key_id = '${operator.key}'`);
    const idle = await O.page.evaluate(() => fetch('/v1/credentials').then((r) => r.json()));
    assert.equal(idle.status, 401, JSON.stringify(idle));
    assert.match(idle.detail, /idle/);
    await O.page.reload();
    await O.page.getByLabel('Key').waitFor();

    await signIn(O.page, operator.secret);
    await settled(O.page);
    sql(`UPDATE console_sessions SET expires_at = strftime('%s','now') - 1 WHERE key_id = '${operator.key}'`);
    const aged = await O.page.evaluate(() => fetch('/v1/credentials').then((r) => r.json()));
    assert.equal(aged.status, 401);
    assert.match(aged.detail, /maximum age/);

    await signIn(O.page, operator.secret);
    await ok('POST', `/v1/keys/${operator.key}/invalidate`, { reason: 'left the team' });
    await O.page.goto(`${origin}/console/#/expiring`);
    await O.page.getByLabel('Key').waitFor();
    assert.match(await O.page.locator('#signin-error').innerText(), /no longer valid/);
    assert.equal(await O.page.locator('#top').isVisible(), false, 'no header of the ended session');
    assert.equal(await O.page.getByRole('button', { name: 'Sign out' }).count(), 0);
    assert.equal(sql(`SELECT count(*) FROM console_sessions WHERE key_id = '${operator.key}'`), '0');
    await O.ctx.close();

    const cookie = (await A.ctx.cookies()).find((x) => x.name === 'kw_session').value;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Key').waitFor();
    assert.equal(await page.locator('#top').isVisible(), false, 'signed out: header hidden');
    const after = await fetch(origin + '/v1/credentials', { headers: { Cookie: `kw_session=${cookie}` } });
    assert.equal(after.status, 401, 'the signed-out session is refused');
  });

  await step('auditor: the chain valid, then broken after tampering with the store', async () => {
    const U = await newUser();
    // by keyboard alone: the key field has focus, Enter signs in, Tab shows where focus is
    await U.page.goto(origin + '/console/');
    await U.page.getByLabel('Key').waitFor();
    assert.equal(await U.page.evaluate(() => document.activeElement.id), 'signin-key');
    await U.page.keyboard.type(auditor.secret);
    await U.page.keyboard.press('Enter');
    await U.page.locator('#top').waitFor({ state: 'visible' });
    await U.page.getByRole('heading', { name: 'Credentials' }).waitFor();
    let focus = [];
    for (let i = 0; i < 8 && !['A', 'BUTTON', 'INPUT', 'SELECT'].includes(focus[0]); i++) {
      await U.page.keyboard.press('Tab');
      focus = await U.page.evaluate(() => {
        const el = document.activeElement;
        const s = getComputedStyle(el);
        return [el.tagName, s.outlineStyle, s.outlineWidth];
      });
    }
    assert.ok(['A', 'BUTTON', 'INPUT', 'SELECT'].includes(focus[0]), 'Tab reaches a control: ' + focus);
    assert.ok(focus[1] !== 'none' && focus[2] !== '0px', 'focus is visible: ' + focus);
    await U.page.goto(`${origin}/console/#/audit`);
    await U.page.locator('#chain').waitFor();
    assert.match(await U.page.locator('#chain').innerText(), /^Chain valid/);
    assert.equal(await U.page.getByRole('button', { name: 'New credential' }).count(), 0);
    sql("UPDATE audit SET action = 'key.tampered' WHERE seq = 3");
    await U.page.reload();
    await U.page.locator('#chain').waitFor();
    const t = await U.page.locator('#chain').innerText();
    assert.match(t, /^Chain broken at record #3/, t);
    await shot(U.page, 'audit-broken');
    await U.ctx.close();
  });

  await step(`weight and time to interactive with ${BULK} more credentials`, async () => {
    const t0 = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < BULK) {
        const i = next++;
        await ok('POST', '/v1/credentials', { name: `bulk-${i}`, owner: `team-${i % 50}@example.com`, scopes: ['orders:read'] });
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    figures.bulk_create_s = (Date.now() - t0) / 1000;
    const P = await newUser();
    await signIn(P.page, ADMIN);
    const measure = async (hash, ready) => {
      const runs = [];
      let bytes = 0, assets = 0;
      for (let i = 0; i < 5; i++) {
        const sizes = [];
        const onResp = async (r) => {
          try { sizes.push([r.url(), (await r.body()).length]); } catch { /* redirects */ }
        };
        P.page.on('response', onResp);
        await P.page.goto('about:blank');
        await P.page.goto(`${origin}/console/${hash}`);
        await P.page.locator(ready).first().waitFor();
        await P.page.waitForFunction(() => performance.getEntriesByName('kw:ready').length > 0);
        // the page marks kw:ready once a page is rendered with its handlers attached
        runs.push(await P.page.evaluate(() => performance.getEntriesByName('kw:ready')[0].startTime));
        await sleep(100);
        P.page.off('response', onResp);
        bytes = sizes.reduce((a, s) => a + s[1], 0);
        assets = sizes.filter((s) => !s[0].includes('/v1/') && !s[0].includes('/api/')).reduce((a, s) => a + s[1], 0);
      }
      runs.sort((a, b) => a - b);
      return { tti_ms_median: Math.round(runs[2]), tti_ms_max: Math.round(runs[4]), bytes, asset_bytes: assets };
    };
    figures.credential_page = await measure(`#/credentials/${credId}`, 'section.slot .actions button');
    figures.credentials_list = await measure('#/credentials', 'table tbody tr a');
    figures.credentials_in_store = (await ok('GET', '/readyz')).keys;
    await P.ctx.close();
  });

  assert.deepEqual(foreign, [], 'requests to anything but keyward');
  assert.deepEqual(errors, [], 'console errors');
  figures.deliberate_4xx_logged = expected4xx.length;
  console.log('FIGURES ' + JSON.stringify(figures));
} catch (e) {
  console.error('FAILED: ' + (e.stack || e));
  for (const ctx of browser.contexts()) { // what the browser showed, for the failure report
    for (const [i, p] of ctx.pages().entries()) {
      await p.screenshot({ path: join(SHOTS, `failure-${i}.png`) }).catch(() => {});
      console.error(`page ${i} ${p.url()}: ` + (await p.locator('body').innerText().catch(() => '')).slice(0, 600));
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
