// Webhooks (SPEC §7): every event of a move, an abort and a fast reverse reaches a receiver
// that fails and goes down for a while, exactly once after de-duplication by id, in order per
// app, signed; a server killed before it delivered loses nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import {
  ALICE, cleanups, createApp, createAppWithBlob, freePort, makeConfig, rest, startProcess, startServer, waitFor,
} from './helpers.mjs';

const SECRET = 'whsec-test-0123456789abcdef';
const ADMIN = 'hooks-admin-token';
const OFFLINE = ['requested', 'reserving_dest', 'blocking_writes', 'dumping_data', 'restoring_data',
  'copying_blobs', 'copying_runtime', 'flipping_routing', 'setting_up_reverse_replication',
  'unblocking_writes', 'completed'];

// A receiver on `port`: answers 500 to the first `failFirst` requests, and can be taken down
// and brought back. Keeps every request with whether its signature was valid.
function receiver(port, failFirst = 0) {
  const got = [];
  let failures = failFirst;
  let server = null;
  const handle = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const ts = req.headers['x-regionmove-timestamp'];
      const want = 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
      const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const event = JSON.parse(body);
      const ok = failures <= 0;
      got.push({ event, ok, signed: req.headers['x-regionmove-signature'] === want && fresh,
        headers: req.headers });
      if (!ok) failures--;
      res.statusCode = ok ? 204 : 500;
      res.end();
    });
  };
  const r = {
    got,
    async up() {
      server = createServer(handle);
      await new Promise((done) => server.listen(port, '127.0.0.1', done));
    },
    async down() {
      const s = server;
      server = null;
      s.closeAllConnections();
      await new Promise((done) => s.close(done));
    },
    // The delivered events (2xx answered), first delivery of each id, in arrival order.
    unique() {
      const seen = new Set();
      return got.filter((g) => g.ok && !seen.has(g.event.id) && seen.add(g.event.id)).map((g) => g.event);
    },
  };
  cleanups.push(() => (server ? r.down() : undefined));
  return r;
}

function hookConfig(port, saga = '') {
  return makeConfig(saga, 'sqlite',
    `[[users]]\nname = "root"\ntoken = "${ADMIN}"\nadmin = true\n` +
    `[[webhooks]]\nname = "platform"\nurl = "http://127.0.0.1:${port}/hooks"\nsecret = "${SECRET}"\n` +
    'events = ["migration.*", "replica.*"]\nmin_backoff_ms = 50\nmax_backoff_ms = 400\ntimeout_ms = 2000\n');
}

async function finished(base, app, id) {
  return waitFor(`migration ${id} to end`, async () => {
    const m = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`);
    return ['completed', 'aborted', 'failed'].includes(m.body.status) ? m.body : null;
  });
}

// The events of one migration must tell its story in order: started, its steps in plan order
// (writes_blocked at the block, cutover at the flip), and one terminal event last.
function checkStory(events, terminal, { flips }) {
  assert.equal(events[0].type, 'migration.started');
  assert.equal(events.at(-1).type, terminal);
  assert.equal(events.filter((e) => e.type === terminal).length, 1);
  assert.equal(events.filter((e) => e.type === 'migration.cutover').length, flips ? 1 : 0);
  assert.equal(events.filter((e) => e.type === 'migration.writes_blocked').length, 1);
  const steps = events.filter((e) => e.type === 'migration.step_changed').map((e) => e.data.step);
  const order = steps.map((s) => OFFLINE.indexOf(s));
  for (let i = 1; i < order.length; i++) assert.ok(order[i] > order[i - 1], `steps out of order: ${steps}`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(Date.parse(events[i].created_at) >= Date.parse(events[i - 1].created_at));
  }
}

test('a move, an abort and a fast reverse reach a failing, then absent, receiver exactly once in order', { timeout: 120000 }, async () => {
  const port = await freePort();
  const hook = receiver(port, 3);
  await hook.up();
  const { base } = await startServer(hookConfig(port),
    { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:1500:3' });
  const a = await createAppWithBlob(base, ALICE);
  const b = await createAppWithBlob(base, ALICE);

  const move = await rest(base, ALICE, 'POST', `/v1/apps/${a}/move`, { dest_region: 'eu-west-1' });
  assert.equal(move.status, 202);
  await waitFor('a few deliveries', async () => hook.unique().length >= 4);
  await hook.down();  // down while the move goes on
  assert.equal((await finished(base, a, move.body.migration_id)).status, 'completed');
  await new Promise((done) => setTimeout(done, 800));
  await hook.up();
  const rev = await rest(base, ALICE, 'POST', `/v1/apps/${a}/migrations/${move.body.migration_id}/reverse`);
  assert.equal(rev.status, 202);
  assert.equal(rev.body.path, 'fast');
  const aborted = await rest(base, ALICE, 'POST', `/v1/apps/${b}/move`, { dest_region: 'ap-southeast-1' });
  assert.equal(aborted.status, 202);
  await waitFor('the abortable move to copy blobs', async () =>
    (await rest(base, ALICE, 'GET', `/v1/apps/${b}/migrations/${aborted.body.migration_id}`)).body.current_step === 'copying_blobs');
  assert.equal((await rest(base, ALICE, 'POST', `/v1/apps/${b}/migrations/${aborted.body.migration_id}/abort`)).status, 202);
  assert.equal((await finished(base, a, rev.body.migration_id)).status, 'completed');
  assert.equal((await finished(base, b, aborted.body.migration_id)).status, 'aborted');
  const td = await rest(base, ALICE, 'DELETE', `/v1/source-replicas/${rev.body.migration_id}`);
  assert.equal(td.status, 200, JSON.stringify(td.body));

  await waitFor('every event', async () => {
    const types = hook.unique().map((e) => e.type);
    return types.filter((t) => ['migration.completed', 'migration.aborted'].includes(t)).length === 3 &&
      types.includes('replica.torn_down');
  });
  await new Promise((done) => setTimeout(done, 500));  // nothing more may come
  assert.ok(hook.got.some((g) => !g.ok), 'the receiver failed some attempts');
  for (const g of hook.got) {
    assert.ok(g.signed, `bad signature on ${JSON.stringify(g.headers)}`);
    assert.equal(g.headers['x-regionmove-delivery'], g.event.id);
    assert.equal(g.headers['x-regionmove-event'], g.event.type);
  }
  const events = hook.unique();
  const of = (id) => events.filter((e) => e.migration_id === id && e.type.startsWith('migration.'));
  checkStory(of(move.body.migration_id), 'migration.completed', { flips: true });
  checkStory(of(rev.body.migration_id), 'migration.completed', { flips: true });
  checkStory(of(aborted.body.migration_id), 'migration.aborted', { flips: false });
  assert.equal(of(rev.body.migration_id)[0].data.reverse_path, 'fast');
  // In order per app: all of a's move before its reverse, and the teardown after both.
  const ofA = events.filter((e) => e.app_id === a).map((e) => e.migration_id);
  assert.deepEqual([...new Set(ofA)], [move.body.migration_id, rev.body.migration_id]);
  assert.equal(events.filter((e) => e.app_id === a).at(-1).type, 'replica.torn_down');
  // What the receiver saw is what the server recorded as delivered, no more, no less.
  const listed = await rest(base, ADMIN, 'GET', '/v1/admin/webhooks/deliveries?limit=1000');
  assert.equal(listed.status, 200);
  const delivered = listed.body.deliveries.filter((d) => d.status === 'delivered');
  assert.equal(delivered.length, listed.body.deliveries.length, JSON.stringify(listed.body));
  assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(events.map((e) => e.id)));
  assert.ok(delivered.some((d) => d.attempts > 1));
  assert.equal((await rest(base, ALICE, 'GET', '/v1/admin/webhooks/deliveries')).status, 403);
});

test('a server killed with undelivered events delivers them all after its restart', { timeout: 120000 }, async () => {
  const port = await freePort();
  const hook = receiver(port);  // down for now
  const config = hookConfig(port);
  const args = ['serve', '--config', config, '--listen', '127.0.0.1:0'];
  const first = await startProcess(args, /serving on (http:\/\/[0-9.:]+)/);
  const base = first.match[1];
  const app = await createApp(base, ALICE, 10);
  const move = await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' });
  assert.equal((await finished(base, app, move.body.migration_id)).status, 'completed');
  first.proc.kill('SIGKILL');
  await first.exited;
  await hook.up();
  const second = await startProcess(args, /serving on (http:\/\/[0-9.:]+)/);
  await waitFor('the completed event', async () =>
    hook.unique().some((e) => e.type === 'migration.completed'));
  checkStory(hook.unique(), 'migration.completed', { flips: true });
  await second.stop();
});
