// The CLI against a running server: every client command, plain --follow output, --json, and
// errors with a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ALICE, BIN, makeConfig, startServer } from './helpers.mjs';

function cli(base, token, ...args) {
  const r = spawnSync(BIN, args, {
    env: { ...process.env, REGIONMOVE_SERVER: base, REGIONMOVE_TOKEN: token },
    encoding: 'utf8', timeout: 60000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('CLI: apps, move --follow, migrations, replicas', async () => {
  const { base } = await startServer(makeConfig());
  const regions = cli(base, ALICE, 'regions');
  assert.equal(regions.code, 0, regions.err);
  assert.match(regions.out, /eu-west-1\s+\S/);

  const created = cli(base, ALICE, 'apps', 'create', 'shop', '--region', 'us-east-1', '--json');
  assert.equal(created.code, 0, created.err);
  const app = JSON.parse(created.out).app_id;
  assert.match(cli(base, ALICE, 'apps', 'list').out, new RegExp(app));
  assert.match(cli(base, ALICE, 'apps', 'list').out, /^APP +NAME +REGION +STATUS +SIZE$/m);
  const shown = cli(base, ALICE, 'apps', 'show', app).out;
  assert.match(shown, /^ {2}region +us-east-1$/m);
  assert.match(shown, /^ {2}size +\d/m);
  assert.equal(cli(base, ALICE, 'migrations', 'list', app).out, `no migrations of ${app}\n`);
  assert.equal(JSON.parse(cli(base, ALICE, 'apps', 'show', app, '--json').out).region, 'us-east-1');

  const plan = cli(base, ALICE, 'move', app, 'eu-west-1', '--dry-run', '--json');
  assert.equal(plan.code, 0, plan.err);
  assert.equal(JSON.parse(plan.out).eligible, true);
  // For people: the plan, both strategies' pauses, each check with a mark and its sentence.
  const readable = cli(base, ALICE, 'move', app, 'eu-west-1', '--dry-run');
  assert.equal(readable.code, 0, readable.err);
  assert.match(readable.out, /^Plan: move \S+ from us-east-1 to eu-west-1 \(offline, 11 steps\)$/m);
  assert.match(readable.out, /^ {2}\* offline: +writes paused ~\d+\.\d s, done in ~\d+\.\d s; rates assumed: /m);
  assert.match(readable.out, /^ {4}online: +writes paused ~\d+\.\d s/m);
  assert.match(readable.out, /^ {2}\u2713 both regions run the sqlite database engine$/m);
  assert.equal([...readable.out.matchAll(/^ {2}[\u2713\u2717] /gm)].length, 7);
  assert.match(readable.out, /^Eligible: run it without --dry-run\.$/m);

  // Not a terminal: one plain line per step, all eleven, in order.
  const moved = cli(base, ALICE, 'move', app, 'eu-west-1', '--follow');
  assert.equal(moved.code, 0, moved.err);
  const steps = [...moved.out.matchAll(/^\[(\d+)\/11\]/gm)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.match(moved.out, /Done: the app is served from eu-west-1/);
  const id = /migration (\S+) queued/.exec(moved.out)[1];

  const status = cli(base, ALICE, 'migrations', 'status', app, id);
  assert.match(status.out, /status completed/);
  assert.match(status.out, /source replica: replicating/);
  assert.match(cli(base, ALICE, 'migrations', 'events', app, id).out, /transition\s+copying_blobs/);
  assert.match(cli(base, ALICE, 'migrations', 'active', app).out, /no active migration/);
  const listed = cli(base, ALICE, 'migrations', 'list', app).out;
  assert.match(listed, new RegExp(id));
  assert.match(listed, /^MIGRATION +KIND +FROM +TO +STATUS +STEP$/m);
  assert.doesNotMatch(listed, /completed +completed/);
  const replicas = JSON.parse(cli(base, ALICE, 'replicas', 'list', '--json').out);
  assert.equal(replicas.source_replicas[0].migration_id, id);

  const abort = cli(base, ALICE, 'migrations', 'abort', app, id);
  assert.notEqual(abort.code, 0);
  assert.match(abort.err, /not_active/);

  const rev = cli(base, ALICE, 'migrations', 'reverse', app, id, '--follow');
  assert.equal(rev.code, 0, rev.err);
  assert.match(rev.out, /fast path/);
  assert.match(rev.out, /Letting the replica in us-east-1 catch up/);
  const revId = /reverse (\S+) queued/.exec(rev.out)[1];
  const torn = cli(base, ALICE, 'replicas', 'teardown', revId);
  assert.equal(torn.code, 0, torn.err);
  assert.match(torn.out, /torn_down/);

  const denied = cli(base, 'wrong-token', 'apps', 'list');
  assert.notEqual(denied.code, 0);
  assert.match(denied.err, /unauthorized/);
  const offline = cli('http://127.0.0.1:9', ALICE, 'regions');
  assert.notEqual(offline.code, 0);
  assert.match(offline.err, /cannot reach/);
});

test('CLI: an online move followed step by step, a server URL with a slash, --version', async () => {
  const { base } = await startServer(makeConfig());
  const created = cli(base, ALICE, 'apps', 'create', 'shop', '--region', 'us-east-1', '--json');
  assert.equal(created.code, 0, created.err);
  const app = JSON.parse(created.out).app_id;
  const online = cli(`${base}/`, ALICE, 'move', app, 'eu-west-1', '--strategy', 'online', '--follow');
  assert.equal(online.code, 0, online.err);
  const steps = [...online.out.matchAll(/^\[(\d+)\/12\]/gm)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.match(online.out, /\[3\/12\] running\s+Copying to eu-west-1 while writes continue/);
  assert.equal(JSON.parse(cli(base, ALICE, 'apps', 'show', app, '--json').out).region, 'eu-west-1');
  const version = cli(base, ALICE, '--version');
  assert.equal(version.code, 0, version.err);
  assert.match(version.out, /^regionmove \d+\.\d+\.\d+/);
});
