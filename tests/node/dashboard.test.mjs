// The web dashboard (SPEC §7 "Web dashboard") in a real browser: Debian's Chromium driven by
// playwright-core. Sign in, a move started from the UI after its dry-run plan and watched live to
// the end (no reload), a fast reverse, a replica torn down with its typed confirmation, an abort
// before the cutover, another user's app unreachable by URL, the move dialog by keyboard only,
// axe-core in each page, a phone-width screen, and the change stream (GET /v1/events) it uses.
// Screenshots go to $REGIONMOVE_ARTIFACTS (default build/ui-screenshots).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ALICE, BOB, cleanups, createAppWithBlob, makeConfig, rest, startServer, waitFor } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ADMIN = 'dashboard-admin-token';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.REGIONMOVE_ARTIFACTS ?? resolve(here, '../../build/ui-screenshots');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let server;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: make test installs Debian's chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  // Every move spends 4 s in copying_runtime (before the cutover, writes paused): long enough
  // to watch it live and to click Abort.
  const config = makeConfig('', 'sqlite', `[[users]]\nname = "root"\ntoken = "${ADMIN}"\nadmin = true\n`);
  server = await startServer(config, { REGIONMOVE_FAULTS: 'copying_runtime.before=delay:4000:1000' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanups.push(() => browser.close());
});

async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) errors.push(m.text()); });
  page.errors = errors;
  return page;
}

async function signIn(page, token, base = server.base) {
  await page.goto(`${base}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
}

// axe-core inside the page: no serious or critical violation of WCAG 2 A/AA.
async function checkA11y(page, what) {
  await page.evaluate(AXE); // through the debugger: the page's content policy allows no inline script
  const result = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${what}: ${JSON.stringify(serious)}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const migrationUrl = (app, id) => `#/apps/${app}/migrations/${id}`;

test('sign-in refuses a wrong token and keeps the right one in the tab only', async () => {
  const page = await newPage();
  await page.goto(`${server.base}/ui`);
  await page.getByRole('heading', { name: 'Sign in to regionmove' }).waitFor();
  await checkA11y(page, 'sign-in');
  await shot(page, 'sign-in');
  await page.getByLabel('API token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  await page.getByLabel('API token').fill(ALICE);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('regionmove.token')), ALICE);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.locator('#nav-admin').isHidden(), true, 'a user sees no Admin link');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to regionmove' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('regionmove.token')), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a move started from the UI after its plan is watched live to the end, reversed, and its replica torn down', async () => {
  const app = await createAppWithBlob(server.base, ALICE, 40);
  const page = await newPage();
  await signIn(page, ALICE);
  const row = page.getByRole('row').filter({ hasText: app });
  await row.getByRole('button', { name: 'Move shop' }).click();
  const dialog = page.getByRole('dialog', { name: 'Move shop' });
  await dialog.getByLabel('Destination region').selectOption('eu-west-1');
  await dialog.getByRole('button', { name: 'Review the plan' }).click();
  await dialog.getByRole('heading', { name: /Plan: us-east-1 → eu-west-1/ }).waitFor();
  const plan = await dialog.innerText();
  for (const want of ['Estimated duration', 'Estimated write pause', 'Database', 'Files', 'Checks', 'Passed']) {
    assert.match(plan, new RegExp(want), `the plan shows ${want}`);
  }
  await checkA11y(page, 'move dialog with its plan');
  await shot(page, 'move-dialog-plan');
  // Nothing started yet: reading the plan is a dry run.
  assert.equal((await rest(server.base, ALICE, 'GET', `/v1/apps/${app}/migrations`)).body.migrations.length, 0);
  await dialog.getByRole('button', { name: 'Start the move' }).click();
  await page.waitForURL(/#\/apps\/.+\/migrations\/.+/);
  const id = decodeURIComponent(page.url().split('/migrations/')[1]);

  // Live: the running step, then the paused-writes notice, then completed, with no reload.
  let reloads = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame() && !f.url().includes('#')) reloads++; });
  await page.locator('ol.timeline li.running').first().waitFor({ timeout: 20000 });
  await page.locator('#writes-paused').waitFor({ timeout: 20000 });
  assert.match(await page.locator('#writes-paused').innerText(), /Writes are paused/);
  await page.locator('ol.timeline li.running', { hasText: 'Copying functions' }).waitFor({ timeout: 20000 });
  assert.equal(await page.locator('#abort').count(), 1, 'Abort is offered before the cutover');
  await checkA11y(page, 'migration page, running');
  await shot(page, 'migration-running');
  await page.locator('p', { hasText: 'Done: the app is served from eu-west-1' }).waitFor({ timeout: 30000 });
  assert.equal(reloads, 0, 'the page followed the move without a reload');
  assert.equal(await page.locator('ol.timeline li.done').count(), 11, 'every step is done');
  assert.equal(await page.locator('#abort').count(), 0, 'no Abort after the cutover');
  assert.equal(await page.locator('#writes-paused').count(), 0);
  const reverse = page.getByRole('button', { name: 'Reverse (fast)…' });
  await reverse.waitFor();
  await shot(page, 'migration-completed');
  assert.equal((await rest(server.base, ALICE, 'GET', `/v1/apps/${app}`)).body.region, 'eu-west-1');

  // The replica the move left in us-east-1, on the Replicas page.
  await page.getByRole('link', { name: 'Replicas' }).click();
  await page.getByRole('heading', { level: 1, name: 'Source replicas' }).waitFor();
  await page.getByRole('row').filter({ hasText: 'us-east-1 (app now in eu-west-1)' }).waitFor();
  await checkA11y(page, 'replicas');
  await shot(page, 'replicas');

  // Reverse from the UI: fast, through that replica.
  await page.goto(`${server.base}/ui/${migrationUrl(app, id)}`);
  await page.getByRole('button', { name: 'Reverse (fast)…' }).click();
  const confirm = page.getByRole('dialog', { name: 'Reverse this move?' });
  assert.match(await confirm.innerText(), /fast: through the replica kept in us-east-1/);
  await confirm.getByRole('button', { name: 'Reverse the move' }).click();
  await page.waitForURL((u) => !u.href.endsWith(id));
  await page.getByRole('heading', { level: 1, name: /Reverse of shop: eu-west-1 → us-east-1/ }).waitFor();
  await page.locator('p', { hasText: 'Done: the app is served from us-east-1' }).waitFor({ timeout: 30000 });
  assert.equal((await rest(server.base, ALICE, 'GET', `/v1/apps/${app}`)).body.region, 'us-east-1');

  // Tear down the replica the reverse left in eu-west-1, typing the app's name.
  const replicas = (await rest(server.base, ALICE, 'GET', '/v1/source-replicas')).body.source_replicas
    .filter((r) => r.app_id === app && r.state === 'replicating');
  assert.equal(replicas.length, 1, JSON.stringify(replicas));
  await page.getByRole('link', { name: 'Replicas' }).click();
  await page.getByRole('button', { name: 'Tear down the replica of shop' }).click();
  const teardown = page.getByRole('dialog', { name: 'Tear down the replica of shop?' });
  const go = teardown.getByRole('button', { name: 'Tear down the replica' });
  await teardown.getByLabel(/Type the app's name/).fill('shop2');
  assert.equal(await go.isDisabled(), true, 'a wrong name keeps the button disabled');
  await teardown.getByLabel(/Type the app's name/).fill('shop');
  assert.equal(await go.isEnabled(), true);
  await go.click();
  await page.getByRole('status').filter({ hasText: 'torn down' }).waitFor();
  await waitFor('the replica torn down', async () => {
    const list = (await rest(server.base, ALICE, 'GET', '/v1/source-replicas')).body.source_replicas;
    return list.find((r) => r.migration_id === replicas[0].migration_id)?.state === 'torn_down' ||
      !list.find((r) => r.migration_id === replicas[0].migration_id);
  });
  await page.getByText('No retained replicas.').waitFor();
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('an abort before the cutover compensates: the app stays where it was', async () => {
  const app = await createAppWithBlob(server.base, ALICE, 10);
  const page = await newPage();
  await signIn(page, ALICE);
  const move = await rest(server.base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'ap-southeast-1' });
  assert.equal(move.status, 202);
  await page.goto(`${server.base}/ui/${migrationUrl(app, move.body.migration_id)}`);
  await page.locator('ol.timeline li.running', { hasText: 'Copying functions' }).waitFor({ timeout: 20000 });
  await page.getByRole('button', { name: 'Abort…' }).click();
  const confirm = page.getByRole('dialog', { name: 'Abort this move?' });
  await confirm.getByRole('button', { name: 'Abort the move' }).click();
  await page.locator('p', { hasText: 'Aborted: the app stays in us-east-1' }).waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#abort').count(), 0);
  assert.equal(await page.locator('#reverse').count(), 0, 'an aborted move is not reversible');
  await shot(page, 'migration-aborted');
  const m = (await rest(server.base, ALICE, 'GET', `/v1/apps/${app}/migrations/${move.body.migration_id}`)).body;
  assert.equal(m.status, 'aborted');
  const a = (await rest(server.base, ALICE, 'GET', `/v1/apps/${app}`)).body;
  assert.equal(a.region, 'us-east-1');
  assert.equal(a.status, 'ready');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("another user's app and migration are not reachable by URL", async () => {
  const app = await createAppWithBlob(server.base, ALICE, 5);
  const moves = (await rest(server.base, ALICE, 'GET', '/v1/apps')).body.apps;
  assert.ok(moves.length > 0);
  const page = await newPage();
  await signIn(page, BOB);
  assert.equal(await page.getByRole('link', { name: 'shop' }).count(), 0, "bob's list has none of alice's apps");
  await page.goto(`${server.base}/ui/#/apps/${app}`);
  await page.getByRole('alert').filter({ hasText: 'Not found' }).waitFor();
  assert.equal(await page.getByText(app).count(), 0);
  await page.goto(`${server.base}/ui/#/apps/${app}/migrations/mig_whatever`);
  await page.getByRole('alert').filter({ hasText: 'Not found' }).waitFor();
  await page.goto(`${server.base}/ui/#/admin`);
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor(); // no admin page for bob
  await page.context().close();
});

test('the move dialog works with the keyboard alone', async () => {
  const app = await createAppWithBlob(server.base, ALICE, 5);
  const page = await newPage();
  await signIn(page, ALICE);
  await page.getByLabel('Filter apps').fill(app);
  // From the filter, Tab reaches the app's link, then its Move button.
  await page.getByLabel('Filter apps').focus();
  const target = `move-${app}`;
  for (let i = 0; i < 6 && (await page.evaluate(() => document.activeElement.id)) !== target; i++) {
    await page.keyboard.press('Tab');
  }
  assert.equal(await page.evaluate(() => document.activeElement.id), target);
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Move shop' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'move-dest', 'focus starts on the region picker');
  await page.keyboard.press('ArrowDown'); // the first region other than the app's
  const dest = await page.evaluate(() => document.activeElement.value);
  assert.ok(dest === 'eu-west-1' || dest === 'ap-southeast-1', dest);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'move-strategy');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'move-review');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'move-start');
  await shot(page, 'move-dialog-keyboard');
  // Escape leaves without a move, and focus goes back to the button that opened the dialog.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement.id), target);
  assert.equal((await rest(server.base, ALICE, 'GET', `/v1/apps/${app}/migrations`)).body.migrations.length, 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('every page passes axe-core, fits a phone-width screen, and an idle dashboard holds no thread', async () => {
  const page = await newPage();
  await signIn(page, ADMIN);
  for (const [hash, heading, name] of [['#/apps', 'Apps', 'apps'], ['#/regions', 'Regions', 'regions'],
    ['#/admin', 'Admin', 'admin'], ['#/replicas', 'Source replicas', 'replicas-admin']]) {
    await page.goto(`${server.base}/ui/${hash}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await page.locator('main .table-wrap, main .empty').first().waitFor();
    await checkA11y(page, name);
    await shot(page, name);
  }
  // The regions page of an admin shows the capacity used.
  await page.goto(`${server.base}/ui/#/regions`);
  await page.getByRole('columnheader', { name: 'Capacity used' }).waitFor();
  // An app page.
  const apps = (await rest(server.base, ALICE, 'GET', '/v1/apps')).body.apps;
  await page.goto(`${server.base}/ui/#/apps/${apps[0].app_id}`);
  await page.getByRole('heading', { name: 'Migrations' }).waitFor();
  await checkA11y(page, 'app');
  await shot(page, 'app');

  // The open dashboard waits for changes in a parked long poll: no request thread held.
  await waitFor('a parked poll of the dashboard', async () => {
    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    return Number(/regionmove_http_parked_requests (\d+)/.exec(metrics)[1]) >= 1;
  }, 10000);

  const phone = await newPage({ width: 375, height: 740 });
  await signIn(phone, ALICE);
  const moved = apps.find((a) => a.name === 'shop');
  const list = (await rest(server.base, ALICE, 'GET', `/v1/apps/${moved.app_id}/migrations`)).body.migrations;
  for (const [hash, name] of [['#/apps', 'phone-apps'],
    [list.length ? migrationUrl(moved.app_id, list[0].migration_id) : '#/apps', 'phone-migration']]) {
    await phone.goto(`${server.base}/ui/${hash}`);
    await phone.locator('main h1').waitFor();
    await phone.locator('main .table-wrap, main .empty, main ol.timeline').first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
    await shot(phone, name);
  }
  assert.deepEqual(page.errors, []);
  assert.deepEqual(phone.errors, []);
  await page.context().close();
  await phone.context().close();
});

test('a migration that needs repair says so, and the admin repairs it from the page', async () => {
  // A step after the cutover that fails twice with two attempts allowed: needs_repair.
  const config = makeConfig('max_attempts = 2\n', 'sqlite',
    `[[users]]\nname = "root"\ntoken = "${ADMIN}"\nadmin = true\n`);
  const broken = await startServer(config, { REGIONMOVE_FAULTS: 'unblocking_writes=error:2' });
  const app = await createAppWithBlob(broken.base, ALICE, 5);
  const move = await rest(broken.base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' });
  assert.equal(move.status, 202);
  const url = `${broken.base}/ui/${migrationUrl(app, move.body.migration_id)}`;
  const page = await newPage();
  await signIn(page, ALICE, broken.base);
  await page.goto(url);
  await page.getByRole('alert').filter({ hasText: 'Needs repair' }).waitFor({ timeout: 30000 });
  assert.match(await page.getByRole('alert').filter({ hasText: 'Needs repair' }).innerText(), /Ask an admin/);
  assert.equal(await page.locator('#repair').count(), 0, 'a user gets no Repair button');
  await page.context().close();

  const admin = await newPage();
  await signIn(admin, ADMIN, broken.base);
  await admin.goto(url);
  await admin.getByRole('button', { name: 'Repair…' }).click();
  await admin.getByRole('dialog', { name: 'Repair this migration?' }).getByRole('button', { name: 'Repair' }).click();
  await admin.locator('p', { hasText: 'Done: the app is served from eu-west-1' }).waitFor({ timeout: 30000 });
  assert.equal(await admin.locator('#repair').count(), 0);
  assert.equal((await rest(broken.base, ALICE, 'GET', `/v1/apps/${app}`)).body.region, 'eu-west-1');
  await admin.context().close();
  await broken.stop();
});

test('GET /v1/events: a change stream per caller, long-polled, with clear errors', async () => {
  const base = server.base;
  const start = await rest(base, ALICE, 'GET', '/v1/events');
  assert.equal(start.status, 200);
  assert.deepEqual(start.body.events, []);
  const from = start.body.next;
  const bobFrom = (await rest(base, BOB, 'GET', '/v1/events')).body.next;
  // A poll parked before the change answers when it commits.
  const waiting = rest(base, ALICE, 'GET', `/v1/events?after=${from}&wait=20`);
  const app = await createAppWithBlob(base, ALICE, 5);
  const t0 = Date.now();
  const move = await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' });
  const first = await waiting;
  assert.equal(first.status, 200);
  assert.ok(Date.now() - t0 < 5000, 'the parked poll answered at the change');
  assert.equal(first.body.events[0].type, 'migration.started');
  assert.equal(first.body.events[0].migration_id, move.body.migration_id);
  assert.ok(first.body.next > from);
  // Following the stream to the end of the move: the events of that move, in order.
  const types = [];
  let after = from;
  await waitFor('migration.completed in the stream', async () => {
    const r = await rest(base, ALICE, 'GET', `/v1/events?after=${after}&wait=5&app=${app}`);
    assert.equal(r.status, 200);
    for (const e of r.body.events) {
      assert.equal(e.app_id, app);
      assert.ok(e.seq > after);
      types.push(e.type);
    }
    after = r.body.next;
    return types.includes('migration.completed');
  }, 40000);
  assert.equal(types[0], 'migration.started');
  assert.ok(types.includes('migration.writes_blocked') && types.includes('migration.cutover'), types.join());
  // Bob sees none of it, and cannot ask for alice's app.
  const bob = await rest(base, BOB, 'GET', `/v1/events?after=${bobFrom}`);
  assert.equal(bob.status, 200);
  assert.deepEqual(bob.body.events, []);
  assert.ok(bob.body.next >= after, 'bob skips past what he may not see');
  assert.equal((await rest(base, BOB, 'GET', `/v1/events?after=0&app=${app}`)).status, 404);
  // An idle wait ends with no events at its deadline.
  const t1 = Date.now();
  const idle = await rest(base, BOB, 'GET', `/v1/events?after=${bob.body.next}&wait=1`);
  assert.equal(idle.status, 200);
  assert.deepEqual(idle.body.events, []);
  assert.ok(Date.now() - t1 >= 900);
  // Bad input.
  for (const q of ['after=x', 'after=0&wait=61', 'after=0&wait=-1']) {
    const r = await rest(base, ALICE, 'GET', `/v1/events?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.body.error, 'invalid_request', q);
  }
  assert.equal((await fetch(`${base}/v1/events`)).status, 401);
});

test('the dashboard files are served with a strict content policy', async () => {
  const res = await fetch(`${server.base}/ui/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(res.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const html = await res.text();
  assert.match(html, /<script src="app.js" defer><\/script>/);
  assert.doesNotMatch(html, /https?:\/\//, 'no external resources');
  const etag = res.headers.get('etag');
  assert.equal((await fetch(`${server.base}/ui/`, { headers: { 'If-None-Match': etag } })).status, 304);
  const js = await fetch(`${server.base}/ui/app.js`);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.doesNotMatch(await js.text(), /https?:\/\//, 'the script names no other origin');
  assert.equal((await fetch(`${server.base}/ui/nope.js`)).status, 404);
  const redirect = await fetch(`${server.base}/ui`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), '/ui/');
});
