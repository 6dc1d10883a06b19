// The crash matrix: for every kill point, a regionmove process is SIGKILLed there in the middle
// of an operation, restarted, and must end the operation in the right state with everything
// that was acknowledged in the region that serves the app, the app writable, and no file of the
// operation left behind. REGIONMOVE_CRASH_MATRIX=full adds every step's ".before" point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ALICE, PG_PORTS, createApp, makeConfig, pgSql, rest, s3Keys, startServer, waitFor } from './helpers.mjs';

const STEPS = ['reserving_dest', 'blocking_writes', 'dumping_data', 'restoring_data',
  'copying_blobs', 'copying_runtime', 'flipping_routing', 'setting_up_reverse_replication',
  'unblocking_writes'];
const FULL = process.env.REGIONMOVE_CRASH_MATRIX === 'full';
const MOVE_POINTS = [
  ...STEPS.map((s) => `${s}.after`),
  ...(FULL ? STEPS.map((s) => `${s}.before`) : ['reserving_dest.before', 'flipping_routing.before']),
  'copying_blobs.after_page', 'restoring_data.before_verify'];

const sleep = (ms) => new Promise((s) => setTimeout(s, ms));


async function call(base, method, path, body, raw) {
  const res = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/octet-stream' },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, text };
}

// An app with rows, blobs (one over 1 MiB) and runtime rows; returns what was acknowledged.
async function seed(base) {
  const app = await rest(base, ALICE, 'POST', '/v1/apps', { name: 'crash', region: 'us-east-1' });
  assert.equal(app.status, 201);
  const id = app.body.app_id;
  const p = `/v1/apps/${id}`;
  assert.equal((await rest(base, ALICE, 'POST', `${p}/tables`,
    { name: 'orders', columns: [{ name: 'total', type: 'real' }, { name: 'note', type: 'text' }] })).status, 201);
  const rows = Array.from({ length: 300 }, (_, i) => ({ id: `o${1000 + i}`, total: i, note: `n${i}` }));
  assert.equal((await rest(base, ALICE, 'POST', `${p}/tables/orders`, rows)).status, 201);
  const blobs = {};
  for (const [key, size] of [['big/photo.bin', 1536 * 1024], ['a.txt', 10], ['dir/b.json', 3000]]) {
    const data = randomBytes(size);
    const put = await call(base, 'PUT', `${p}/blobs/${key}`, undefined, data);
    assert.equal(put.status, 201, put.text);
    blobs[key] = createHash('sha256').update(data).digest('hex');
  }
  assert.equal((await rest(base, ALICE, 'PUT', `${p}/functions/fn`,
    { entrypoint: 'main', runtime: 'node20', code: 'export default 1' })).status, 201);
  assert.equal((await rest(base, ALICE, 'PUT', `${p}/env/TOKEN`, { value: 's3cr3t', secret: true })).status, 201);
  assert.equal((await rest(base, ALICE, 'PUT', `${p}/cron/nightly`, { schedule: '0 3 * * *', function: 'fn' })).status, 201);
  return { id, rows, blobs };
}

async function verify(base, seeded, region) {
  const p = `/v1/apps/${seeded.id}`;
  const app = await rest(base, ALICE, 'GET', p);
  assert.equal(app.body.region, region);
  assert.equal(app.body.status, 'ready');
  const got = await rest(base, ALICE, 'GET', `${p}/tables/orders?limit=1000`);
  assert.deepEqual(got.body.rows.map((r) => [r.id, r.total, r.note]),
    seeded.rows.map((r) => [r.id, r.total, r.note]));
  for (const [key, sha] of Object.entries(seeded.blobs)) {
    const res = await fetch(`${base}${p}/blobs/${key}`, { headers: { Authorization: `Bearer ${ALICE}` } });
    assert.equal(res.status, 200, key);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(body).digest('hex'), sha, key);
  }
  const fn = await rest(base, ALICE, 'GET', `${p}/functions/fn`);
  assert.equal(fn.body.code, 'export default 1');
  const env = await rest(base, ALICE, 'GET', `${p}/env`);
  assert.deepEqual(env.body.env.map((e) => e.key), ['TOKEN']);
  const cron = await rest(base, ALICE, 'GET', `${p}/cron/nightly`);
  assert.equal(cron.body.function, 'fn');
  // Writable where it is served.
  assert.equal((await rest(base, ALICE, 'POST', `${p}/tables/orders`, { id: 'zz-after', total: 1 })).status, 201);
}

// No file of an operation may be left: staging artifacts, half-restored databases, temp blobs.
function leftovers(config) {
  const found = [];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.restore|\.tmp-|\.zst|\.raw|\.pre\.sql|\.post\.dump/.test(name)) found.push(path);
    }
  };
  walk(join(dirname(config), 'var'));
  return found;
}

async function terminal(base, app, id) {
  return waitFor(`migration ${id} to end`, async () => {
    const m = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`);
    return ['completed', 'aborted', 'failed'].includes(m.body.status) ? m.body : null;
  });
}

// Runs `act` on a server armed to die at `faults`, waits for the death, restarts it clean.
async function crashAndRestart(config, faults, act) {
  const first = await startServer(config, { REGIONMOVE_FAULTS: faults });
  const ctx = await act(first.base);
  const death = await Promise.race([first.exited, sleep(30000).then(() => null)]);
  assert.ok(death && death.signal === 'SIGKILL',
    `the process did not die at ${faults}; the end of its log:\n${first.log().slice(-3000)}`);
  const second = await startServer(config);
  return { ...ctx, base: second.base, stop: second.stop };
}

// Also with an S3 dest (the local server of scripts/s3-local): no object of the app may be left
// in its bucket.
for (const blobs of ['fs', 's3']) {
  test(`${blobs === 's3' ? 'S3 dest: ' : ''}abort killed during compensation ends aborted with the app whole in its source`, async () => {
    const config = makeConfig('lease_seconds = 1\n', 'sqlite', '', blobs);
    let seeded;
    const faults = 'copying_runtime.before=delay:3000:1;compensation.after_give_back=kill';
    const { base, id, stop } = await crashAndRestart(config, faults, async (b) => {
      seeded = await seed(b);
      const m = await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/move`, { dest_region: 'eu-west-1' });
      await waitFor('copying_runtime', async () => (await rest(b, ALICE, 'GET',
        `/v1/apps/${seeded.id}/migrations/${m.body.migration_id}`)).body.current_step === 'copying_runtime');
      if (blobs === 's3') {
        assert.ok((await s3Keys(config, `eu-west-1/${seeded.id}/`)).length > 0, 'the copy reached S3');
      }
      assert.equal((await rest(b, ALICE, 'POST',
        `/v1/apps/${seeded.id}/migrations/${m.body.migration_id}/abort`)).status, 202);
      return { id: m.body.migration_id };
    });
    const done = await terminal(base, seeded.id, id);
    assert.equal(done.status, 'aborted', JSON.stringify(done));
    await verify(base, seeded, 'us-east-1');
    const dest = join(dirname(config), 'var', 'regions', 'eu-west-1');
    assert.equal(existsSync(join(dest, 'db', `${seeded.id}.sqlite3`)), false);
    assert.equal(existsSync(join(dest, 'blobs', seeded.id)), false);
    if (blobs === 's3') assert.deepEqual(await s3Keys(config, `eu-west-1/${seeded.id}/`), []);
    assert.deepEqual(leftovers(config), []);
    await stop();
  });
}

// A move killed right after its dest reservation committed, before anything else of it was
// recorded, then aborted: compensation must release the reservation all the same. eu-west-1 holds
// one app at most, so a reservation left behind would refuse the next app's move.
test('a move killed right after reserving dest, then aborted, leaves the capacity free', async () => {
  const config = makeConfig('lease_seconds = 1\n', 'sqlite', '', 'fs', { 'eu-west-1': 'max_apps = 1\n' });
  const first = await startServer(config, { REGIONMOVE_FAULTS: 'reserving_dest.after_reserve=kill' });
  const app = await createApp(first.base, ALICE);
  const other = await createApp(first.base, ALICE);
  await rest(first.base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' }).catch(() => null);
  const death = await Promise.race([first.exited, sleep(30000).then(() => null)]);
  assert.ok(death && death.signal === 'SIGKILL', `the process did not die: ${first.log().slice(-2000)}`);
  // The abort is asked for while no worker runs (an API-only server), then a worker compensates.
  const api = await startServer(config, {}, ['--no-workers']);
  const id = (await rest(api.base, ALICE, 'GET', `/v1/apps/${app}/migrations`)).body.migrations[0].migration_id;
  assert.equal((await rest(api.base, ALICE, 'POST', `/v1/apps/${app}/migrations/${id}/abort`)).status, 202);
  await api.stop();
  const { base, stop } = await startServer(config);
  assert.equal((await terminal(base, app, id)).status, 'aborted');
  const next = await rest(base, ALICE, 'POST', `/v1/apps/${other}/move`, { dest_region: 'eu-west-1' });
  assert.equal(next.status, 202, JSON.stringify(next.body));
  const done = await terminal(base, other, next.body.migration_id);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  await stop();
});

// The same on PostgreSQL regions (the clusters of scripts/pg-regions), at the points where the
// engine's own state is in flux: the fence, the staged schema, the copy before and after its
// verification, the flip, the subscription, the unfence. After each, the replica is torn down
// and no slot, subscription or publication of the app may be left on any cluster.
const PG_MOVE_POINTS = ['blocking_writes.after', 'dumping_data.after',
  'restoring_data.before_verify', 'restoring_data.after', 'flipping_routing.after',
  'setting_up_reverse_replication.after', 'unblocking_writes.after'];

function pgReplicationObjects(id) {
  let n = 0;
  for (const region of Object.keys(PG_PORTS)) {
    n += Number(pgSql(region, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'rm\\_${id}%') + (SELECT count(*) FROM pg_subscription WHERE subname LIKE 'rm\\_${id}%')`));
  }
  return n;
}

async function pgTeardownAndDrop(base, id, migrationId) {
  assert.equal((await rest(base, ALICE, 'DELETE', `/v1/source-replicas/${migrationId}`)).status, 200);
  assert.equal(pgReplicationObjects(id), 0);
  for (const region of Object.keys(PG_PORTS)) {
    pgSql(region, `DROP DATABASE IF EXISTS "${id}" WITH (FORCE)`);
  }
}

// A move killed at `point` completes with nothing lost; on PostgreSQL the replica is then torn
// down and must leave no replication object behind.
// With an S3 dest ('s3': SQLite databases, eu-west-1's blobs in the local S3 server), the points
// of the blob copy, and exactly one object per blob after it (a copy repeated after the crash
// leaves no stray version).
const S3_MOVE_POINTS = ['copying_blobs.before', 'copying_blobs.after_page', 'copying_blobs.after',
  'unblocking_writes.after'];
for (const [engine, points] of [['sqlite', MOVE_POINTS], ['postgres', PG_MOVE_POINTS],
  ['s3', S3_MOVE_POINTS]]) {
  for (const point of points) {
    const label = { sqlite: '', postgres: 'postgres: ', s3: 'S3 dest: ' }[engine];
    const name = `${label}move killed at ${point} completes with nothing lost`;
    test(name, async () => {
      const config = engine === 's3' ? makeConfig('lease_seconds = 1\n', 'sqlite', '', 's3')
        : makeConfig('lease_seconds = 1\n', engine);
      let seeded;
      const started = await crashAndRestart(config, `${point}=kill`, async (b) => {
        seeded = await seed(b);
        // A point early in the move can kill the process before its 202 is written: the client
        // then learns of the move as any client whose answer was lost would, from the list.
        const m = await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/move`, { dest_region: 'eu-west-1' })
          .catch(() => null);
        if (m) assert.equal(m.status, 202);
        return { id: m?.body.migration_id };
      });
      const { base, stop } = started;
      const id = started.id ?? (await rest(base, ALICE, 'GET', `/v1/apps/${seeded.id}/migrations`))
        .body.migrations[0].migration_id;
      const done = await terminal(base, seeded.id, id);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      await verify(base, seeded, 'eu-west-1');
      assert.deepEqual(leftovers(config), []);
      if (engine === 'postgres') await pgTeardownAndDrop(base, seeded.id, id);
      if (engine === 's3') {
        assert.equal((await s3Keys(config, `eu-west-1/${seeded.id}/`)).length,
          Object.keys(seeded.blobs).length);
      }
      await stop();
    });
  }
}

// An online move killed while it syncs (during its copy, after the copy, after the lag gate) or
// under the block completes with nothing lost, on both engines: the sync resumes from what it
// recorded; a copy cut short starts over (its snapshot died with the process), and on
// PostgreSQL the first attempt's slot is gone by the end (pgTeardownAndDrop counts them).
for (const engine of ['sqlite', 'postgres']) {
  for (const point of ['syncing.during_copy', 'syncing.after_copy', 'syncing.after', 'restoring_data.after']) {
    const name = `${engine === 'sqlite' ? '' : 'postgres: '}online move killed at ${point} completes with nothing lost`;
    test(name, async () => {
      const config = makeConfig('lease_seconds = 1\n', engine);
      let seeded;
      const { base, id, stop } = await crashAndRestart(config, `${point}=kill`, async (b) => {
        seeded = await seed(b);
        const m = await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/move`,
          { dest_region: 'eu-west-1', strategy: 'online' });
        assert.equal(m.status, 202);
        return { id: m.body.migration_id };
      });
      const done = await terminal(base, seeded.id, id);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      assert.equal(done.strategy, 'online');
      // Killed after its copy, the sync resumed from its recorded position: one bulk copy (two
      // when killed during it), and the pause compared only the rows the stream changed since.
      const res = typeof done.resources === 'string' ? JSON.parse(done.resources) : done.resources;
      assert.equal(res.copies, point === 'syncing.during_copy' ? 2 : 1, JSON.stringify(res));
      if (point.startsWith('syncing')) assert.equal(res.verified.scope, 'changed_rows', JSON.stringify(res));
      await verify(base, seeded, 'eu-west-1');
      assert.deepEqual(leftovers(config), []);
      if (engine === 'postgres') await pgTeardownAndDrop(base, seeded.id, id);
      if (engine === 's3') {
        assert.equal((await s3Keys(config, `eu-west-1/${seeded.id}/`)).length,
          Object.keys(seeded.blobs).length);
      }
      await stop();
    });
  }
}

// A reverse killed at `point` completes with nothing lost, a write made after the move
// included (it travels back through the replica on the fast path).
for (const [engine, path, point] of [['sqlite', 'fast', 'dumping_data.after'],
  ['sqlite', 'fast', 'flipping_routing.after'], ['sqlite', 'slow', 'restoring_data.after'],
  ['sqlite', 'slow', 'unblocking_writes.after'], ['postgres', 'fast', 'dumping_data.after'],
  ['postgres', 'fast', 'restoring_data.after']]) {
  const name = `${engine === 'sqlite' ? '' : 'postgres: '}${path} reverse killed at ${point} completes with nothing lost`;
  test(name, async () => {
    const config = makeConfig('lease_seconds = 1\n', engine);
    // The forward move passes every point once: the reverse dies at the second hit.
    let seeded;
    const { base, id, stop } = await crashAndRestart(config, `${point}=kill:1`, async (b) => {
      seeded = await seed(b);
      const m = await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/move`, { dest_region: 'eu-west-1' });
      const fwd = await terminal(b, seeded.id, m.body.migration_id);
      assert.equal(fwd.status, 'completed');
      const after = { id: 'o9999', total: 9999, note: 'after' };
      assert.equal((await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/tables/orders`, after)).status, 201);
      seeded.rows.push(after);
      if (path === 'slow') {
        assert.equal((await rest(b, ALICE, 'DELETE', `/v1/source-replicas/${fwd.migration_id}`)).status, 200);
      }
      const r = await rest(b, ALICE, 'POST', `/v1/apps/${seeded.id}/migrations/${fwd.migration_id}/reverse`);
      assert.equal(r.status, 202);
      assert.equal(r.body.path, path);
      return { id: r.body.migration_id };
    });
    const done = await terminal(base, seeded.id, id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    await verify(base, seeded, 'us-east-1');
    assert.deepEqual(leftovers(config), []);
    if (engine === 'postgres') await pgTeardownAndDrop(base, seeded.id, id);
    await stop();
  });
}
