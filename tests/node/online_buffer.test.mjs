// During an online move's short pause, the guard holds writes and serves them after it instead
// of answering 503: on embedded and on PostgreSQL regions, a writer sees only 2xx and nothing
// acknowledged is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, createApp, makeConfig, rest, rowIds, startServer, waitFor } from './helpers.mjs';

for (const engine of ['sqlite', 'postgres']) {
  test(`writes during an online move's pause are held and served (${engine})`, { timeout: 120000 }, async () => {
    const config = makeConfig('', engine);
    // The pause lasts at least 400 ms, so that writes certainly arrive during it.
    const { base } = await startServer(config, { REGIONMOVE_FAULTS: 'unblocking_writes=delay:400:1' });
    const app = await createApp(base, ALICE);
    let stop = false;
    const acked = [];
    const refused = [];
    let slowest = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const id = `b${i}`;
        const t0 = Date.now();
        const r = await rest(base, ALICE, 'POST', `/v1/apps/${app}/tables/orders`, { id, total: i });
        slowest = Math.max(slowest, Date.now() - t0);
        if (r.status === 201) acked.push(id);
        else refused.push(`${r.status} ${JSON.stringify(r.body)}`);
        await new Promise((s) => setTimeout(s, 2));
      }
    })();
    await waitFor('some writes', () => acked.length >= 10);
    const m = await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1', strategy: 'online' });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitFor('the move', async () => {
      const r = await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${m.body.migration_id}`);
      return ['completed', 'failed', 'aborted'].includes(r.body.status) ? r.body : null;
    }, 90000);
    assert.equal(done.status, 'completed');
    const after = acked.length;
    await waitFor('writes after the move', () => acked.length >= after + 10);
    stop = true;
    await writer;
    assert.deepEqual(refused, []);
    assert.ok(slowest >= 300, `a write waited out the pause (slowest ${slowest} ms)`);
    const present = await rowIds(base, ALICE, app, 'orders');
    const lost = acked.filter((id) => !present.has(id));
    console.log(`online buffer (${engine}): acked=${acked.length} refused=${refused.length} lost=${lost.length} slowest=${slowest}ms`);
    assert.equal(lost.length, 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /regionmove_guard_buffered_total\{outcome="served"\} [1-9]/);
  });
}
