// `serve --no-workers` answers the API while a separate `regionmove worker` process runs the
// migrations on the same config: the guard, the write fence and the data all cross processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, createApp, makeConfig, rest, rowIds, startProcess, startServer } from './helpers.mjs';

async function waitStatus(base, app, id, done) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const r = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`);
    if (done(r.body)) return r.body;
    await new Promise((s) => setTimeout(s, 20));
  }
  throw new Error(`migration ${id} did not get there`);
}

test('API process and worker process share one deployment; nothing acknowledged is lost', async () => {
  const config = makeConfig();
  const { base } = await startServer(config, {}, ['--no-workers']);
  const app = await createApp(base, ALICE);
  const put = await fetch(`${base}/v1/apps/${app}/blobs/seed`,
    { method: 'PUT', headers: { Authorization: `Bearer ${ALICE}` }, body: 'seed' });
  assert.equal(put.status, 201);

  // Without a worker nothing moves.
  const m = await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' });
  assert.equal(m.status, 202);
  await new Promise((s) => setTimeout(s, 300));
  const waiting = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${m.body.migration_id}`);
  assert.equal(waiting.body.status, 'queued');

  // A writer through the API process while the worker process moves the app there and back.
  let stop = false;
  const acked = [];
  let blocked = 0;
  const writer = (async () => {
    for (let i = 0; i < 5000 && !stop; i++) {
      const id = `w${100000 + i}`;
      const r = await rest(base, ALICE, 'POST', `/v1/apps/${app}/tables/orders`, { id, total: i });
      if (r.status === 201) acked.push(id);
      else if (r.status === 503) {
        assert.equal(r.body.error, 'app_migrating');
        blocked++;
      } else assert.fail(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
    }
  })();
  await startProcess(['worker', '--config', config], /worker running/,
    { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:400:2' });
  const moved = await waitStatus(base, app, m.body.migration_id, (b) => b.status === 'completed');
  assert.equal(moved.source_replica_state, 'replicating');
  const rev = await rest(base, ALICE, 'POST', `/v1/apps/${app}/migrations/${m.body.migration_id}/reverse`);
  assert.equal(rev.status, 202);
  assert.equal(rev.body.path, 'fast');
  await waitStatus(base, app, rev.body.migration_id, (b) => b.status === 'completed');
  await new Promise((s) => setTimeout(s, 200));
  stop = true;
  await writer;

  const appNow = await rest(base, ALICE, 'GET', `/v1/apps/${app}`);
  assert.equal(appNow.body.region, 'us-east-1');
  const present = await rowIds(base, ALICE, app, 'orders');
  const lost = acked.filter((id) => !present.has(id));
  console.log(`two processes: acked=${acked.length} blocked=${blocked} lost=${lost.length}`);
  assert.equal(lost.length, 0);
  assert.ok(acked.length > 0 && blocked > 0);
});
