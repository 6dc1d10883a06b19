// Teardown is an operation on the app: serialised with its migrations, durable across a crash,
// and safe under concurrent callers (SPEC §5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ALICE, createApp, makeConfig, rest, startServer, waitFor } from './helpers.mjs';


async function movedApp(base) {
  const app = await createApp(base, ALICE, 20);
  const put = await fetch(`${base}/v1/apps/${app}/blobs/logo`,
    { method: 'PUT', headers: { Authorization: `Bearer ${ALICE}` }, body: 'x'.repeat(300000) });
  assert.equal(put.status, 201);
  const m = await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' });
  assert.equal(m.status, 202);
  const id = m.body.migration_id;
  await waitFor('the move', async () =>
    (await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`)).body.status === 'completed');
  return { app, id };
}

test('a teardown killed half-way finishes by itself after a restart', async () => {
  const config = makeConfig('lease_seconds = 1\n');
  const data = join(dirname(config), 'var', 'regions', 'us-east-1');
  const first = await startServer(config, { REGIONMOVE_FAULTS: 'teardown.after_drop=kill' });
  const { app, id } = await movedApp(first.base);
  assert.ok(existsSync(join(data, 'blobs', app)));
  await assert.rejects(fetch(`${first.base}/v1/source-replicas/${id}`,
    { method: 'DELETE', headers: { Authorization: `Bearer ${ALICE}` } }));
  await first.stop();
  const second = await startServer(config);
  const state = await waitFor('the teardown to resume', async () => {
    const m = await rest(second.base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`);
    return m.body.source_replica_state === 'torn_down' ? m.body : null;
  });
  assert.equal(state.status, 'completed');
  assert.equal(existsSync(join(data, 'db', `${app}.sqlite3`)), false);
  assert.equal(existsSync(join(data, 'blobs', app)), false);
  const replicas = await rest(second.base, ALICE, 'GET', '/v1/source-replicas');
  assert.equal(replicas.body.source_replicas.length, 0);
  const rows = await rest(second.base, ALICE, 'GET', `/v1/apps/${app}/tables/orders?limit=100`);
  assert.equal(rows.body.rows.length, 20);  // the app is served from eu-west-1, intact
});

test('a teardown during a fast reverse is 409 app_busy and the reverse completes', async () => {
  const config = makeConfig();
  const { base } = await startServer(config,
    { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:1500:2' });
  const { app, id } = await movedApp(base);
  const rev = await rest(base, ALICE, 'POST', `/v1/apps/${app}/migrations/${id}/reverse`);
  assert.equal(rev.status, 202);
  assert.equal(rev.body.path, 'fast');
  await waitFor('the reverse to copy blobs', async () =>
    (await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${rev.body.migration_id}`))
      .body.current_step === 'copying_blobs');
  const td = await rest(base, ALICE, 'DELETE', `/v1/source-replicas/${id}`);
  assert.equal(td.status, 409, JSON.stringify(td.body));
  assert.equal(td.body.error, 'app_busy');
  const done = await waitFor('the reverse', async () => {
    const r = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${rev.body.migration_id}`);
    return ['completed', 'failed', 'aborted'].includes(r.body.status) ? r.body : null;
  });
  assert.equal(done.status, 'completed', JSON.stringify(done));
  const rows = await rest(base, ALICE, 'GET', `/v1/apps/${app}/tables/orders?limit=100`);
  assert.equal(rows.status, 200);
  assert.equal(rows.body.rows.length, 20);
});

test('concurrent teardowns of one replica answer 200 or 409 not_replicating, never 5xx', async () => {
  const config = makeConfig();
  const data = join(dirname(config), 'var', 'regions', 'us-east-1');
  const { base } = await startServer(config);
  const { app, id } = await movedApp(base);
  const answers = await Promise.all(Array.from({ length: 8 },
    () => rest(base, ALICE, 'DELETE', `/v1/source-replicas/${id}`)));
  for (const a of answers) {
    assert.ok(a.status === 200 || (a.status === 409 && a.body.error === 'not_replicating'),
      JSON.stringify(a));
  }
  assert.ok(answers.some((a) => a.status === 200));
  const m = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`);
  assert.equal(m.body.source_replica_state, 'torn_down');
  assert.equal(existsSync(join(data, 'db', `${app}.sqlite3`)), false);
  assert.equal(existsSync(join(data, 'blobs', app)), false);
});
