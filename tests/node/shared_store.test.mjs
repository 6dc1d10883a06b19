// Several regionmove processes share one PostgreSQL control store: two API servers and three
// workers run 30 moves of apps with data under continuous writers, while one worker is
// SIGKILLed mid-step twice and another is SIGSTOPped past its lease and resumed. Every move
// completes, nothing acknowledged is lost, and each migration's history is one chain of
// transitions: no step is recorded twice (as it would be if two workers had both run it to the
// end, or a stale worker had written after a takeover).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ALICE, createApp, makeConfig, pgSql, rest, rowIds, startProcess, startServer, waitFor } from './helpers.mjs';

const DB = 'regionmove_shared_test';
const MOVES = 30;
const sleep = (ms) => new Promise((s) => setTimeout(s, ms));

test('two API servers and three workers on one PostgreSQL control store', { timeout: 240000 }, async () => {
  pgSql('us-east-1', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  const env = {
    REGIONMOVE_SECRET_KEY: randomBytes(32).toString('hex'),
    // Each move dwells a little in restoring_data, so that the signals land mid-step.
    REGIONMOVE_FAULTS: 'restoring_data.before_verify=delay:400:1000',
  };
  const config = makeConfig('lease_seconds = 2\nmax_concurrent = 4\n', 'sqlite',
    `[control_store]\nengine = "postgres"\ndsn = "postgresql://postgres@127.0.0.1:54321/${DB}"\n`);
  const startWorker = () => startProcess(['worker', '--config', config], /worker running/, env);

  // All five start together: the schema is applied once, under the store's advisory lock.
  const [api1, api2, ...workers] = await Promise.all([
    startServer(config, env, ['--no-workers']), startServer(config, env, ['--no-workers']),
    startWorker(), startWorker(), startWorker()]);
  // Each schema version applied once, however many processes raced to apply it.
  assert.equal(pgSql('us-east-1', 'SELECT count(*) - count(DISTINCT version) FROM schema_version', DB), '0');
  const bases = [api1.base, api2.base];
  const health = await (await fetch(`${api2.base}/healthz`)).json();
  assert.deepEqual(health.control_store, { engine: 'postgres', status: 'ok' });

  const apps = [];
  for (let i = 0; i < MOVES; i++) apps.push(await createApp(bases[i % 2], ALICE, 20));

  // Writers through both API servers, round robin over the apps.
  let stop = false;
  const acked = new Map(apps.map((a) => [a, []]));
  let blocked = 0;
  const writers = [0, 1, 2].map((w) => (async () => {
    for (let i = 0; !stop; i++) {
      const app = apps[(i * 3 + w) % apps.length];
      const id = `w${w}-${i}`;
      const r = await rest(bases[(i + w) % 2], ALICE, 'POST', `/v1/apps/${app}/tables/orders`, { id, total: i });
      if (r.status === 201) acked.get(app).push(id);
      else if (r.status === 503 && r.body.error === 'app_migrating') blocked++;
      else assert.fail(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
    }
  })());

  const moves = [];
  for (let i = 0; i < MOVES; i++) {
    const m = await rest(bases[i % 2], ALICE, 'POST', `/v1/apps/${apps[i]}/move`, { dest_region: 'eu-west-1' });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    moves.push({ app: apps[i], id: m.body.migration_id });
  }

  // The migrations a worker process holds a live lease on (lease owners are host/pid/n).
  const leases = (proc) => Number(pgSql('us-east-1',
    `SELECT count(*) FROM migrations WHERE terminal = 0 AND lease_owner LIKE '%/${proc.pid}/%'`, DB));
  const killMidStep = async (k) => {
    await waitFor(`worker ${k} to hold a lease`, () => leases(workers[k].proc) > 0, 60000);
    workers[k].proc.kill('SIGKILL');
    await workers[k].exited;
    workers[k] = await startWorker();
  };
  await killMidStep(0);
  await killMidStep(0);

  // SIGSTOP a worker while it holds a lease, past the lease's expiry; then let it run again.
  let stopped = false;
  for (let tries = 0; tries < 50 && !stopped; tries++) {
    await waitFor('worker 1 to hold a lease', () => leases(workers[1].proc) > 0, 60000);
    workers[1].proc.kill('SIGSTOP');
    if (leases(workers[1].proc) > 0) stopped = true;
    else workers[1].proc.kill('SIGCONT');  // it let go just before the signal: try again
  }
  assert.ok(stopped, 'worker 1 was never stopped while holding a lease');
  const held = pgSql('us-east-1', `SELECT id || ' ' || epoch FROM migrations WHERE terminal = 0 AND lease_owner LIKE '%/${workers[1].proc.pid}/%'`, DB);
  // lease_seconds = 2: another worker takes its migration over (if the process stopped inside a
  // store transaction, the server ends that session after a second, releasing its locks).
  await sleep(4500);
  workers[1].proc.kill('SIGCONT');

  const deadline = Date.now() + 150000;
  const final = new Map();
  while (final.size < moves.length && Date.now() < deadline) {
    for (const m of moves) {
      if (final.has(m.id)) continue;
      const r = await rest(api1.base, ALICE, 'GET', `/v1/apps/${m.app}/migrations/${m.id}`);
      if (['completed', 'failed', 'aborted'].includes(r.body.status)) final.set(m.id, r.body);
    }
    await sleep(200);
  }
  stop = true;
  await Promise.all(writers);
  const statuses = moves.map((m) => final.get(m.id)?.status ?? 'unfinished');
  assert.deepEqual(statuses.filter((s) => s !== 'completed'), [], 'every move completes');

  // The resumed worker found its migration taken over: its writes were fenced, by the epoch
  // check (saga_fenced, lease lost) or, when it was stopped inside a store transaction, by the
  // server, which ended that session (its transaction rolled back; the chain check below shows
  // that nothing of it was recorded).
  const fenced = /saga_fenced|lease lost|control store: server closed the connection/;
  try {
    await waitFor('the resumed worker to be fenced', () => fenced.test(workers[1].log()), 30000);
  } catch (e) {
    const id = held.split(' ')[0];
    console.log(`held at stop: ${held}\n${pgSql('us-east-1', `SELECT string_agg(type || ':' || step || ':' || attempt, ' ' ORDER BY seq) FROM migration_events WHERE migration_id = '${id}'`, DB)}\n${workers[1].log()}`);
    throw e;
  }

  // Nothing acknowledged is lost.
  let lost = 0, total = 0;
  for (const app of apps) {
    const present = await rowIds(api2.base, ALICE, app, 'orders');
    for (const id of acked.get(app)) { total++; if (!present.has(id)) lost++; }
    const region = await rest(api2.base, ALICE, 'GET', `/v1/apps/${app}`);
    assert.equal(region.body.region, 'eu-west-1');
  }

  // The moves ran in the worker processes; an API server's dry run measures its rates from them.
  const plan = await rest(api2.base, ALICE, 'POST', `/v1/apps/${apps[0]}/move`,
    { dest_region: 'us-east-1', dry_run: true });
  assert.equal(plan.body.strategies.offline.rates, 'measured by the last 20 offline move(s)');

  // Each history is one chain requested -> ... -> completed, every step recorded once.
  let retries = 0;
  for (const m of moves) {
    const ev = await rest(api1.base, ALICE, 'GET', `/v1/apps/${m.app}/migrations/${m.id}/events`);
    const transitions = ev.body.events.filter((e) => e.type === 'transition');
    retries += ev.body.events.filter((e) => e.type === 'retry').length;
    assert.equal(transitions[0].from, 'requested', m.id);
    assert.equal(transitions.at(-1).to, 'completed', m.id);
    const seen = new Set();
    for (let i = 0; i < transitions.length; i++) {
      const t = transitions[i];
      assert.ok(!seen.has(t.from), `${m.id}: step ${t.from} recorded twice`);
      seen.add(t.from);
      if (i > 0) {
        assert.equal(t.from, transitions[i - 1].to, `${m.id}: chain broken at ${t.from}`);
        assert.ok(t.ended_at >= transitions[i - 1].ended_at, `${m.id}: transitions out of order`);
      }
    }
  }
  console.log(`shared control store: moves=${MOVES} acked=${total} blocked=${blocked} lost=${lost} retries=${retries}`);
  assert.equal(lost, 0);
  assert.ok(total > 0 && blocked > 0);
});
