// The CLI against a running server: every client command, plain --follow output, --json, and
// errors with a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, BIN, cleanups, createApp, makeConfig, rest, startServer, waitFor } from './helpers.mjs';

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

// Runs the CLI on a pseudo-terminal `cols` columns wide (util-linux `script`); `onOutput` sees
// the output so far and may type into the terminal. Resolves to { code, out }.
function onTerminal(cols, base, args, onOutput = () => {}) {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const proc = spawn('script', ['-qfec', `stty cols ${cols}; exec '${BIN}' ${quoted}`, '/dev/null'], {
    env: { ...process.env, REGIONMOVE_SERVER: base, REGIONMOVE_TOKEN: ALICE, COLUMNS: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (chunk) => { out += chunk; onOutput(out, proc); });
  proc.stderr.on('data', (chunk) => { out += chunk; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60000);
  return new Promise((done) => proc.on('exit', (code) => {
    clearTimeout(timer);
    done({ code, out });
  }));
}

// Every line as the terminal shows it: split at \r and \n, with the erase-line codes removed.
const screenLines = (out) => out.replace(/\x1b\[K/g, '').split(/[\r\n]/).filter((l) => l !== '');

test('CLI on a 60-column terminal: the live line never wraps, the end says what happened and what next', async () => {
  const { base } = await startServer(makeConfig(), { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:700:2' });
  const app = await createApp(base, ALICE);
  await rest(base, ALICE, 'PUT', `/v1/apps/${app}/blobs/a.bin`, 'x'.repeat(1 << 20));
  const r = await onTerminal(60, base, ['move', app, 'ap-southeast-1', '--follow']);
  assert.equal(r.code, 0, r.out);
  const live = screenLines(r.out.slice(0, r.out.indexOf('Moved:')));
  assert.ok(live.some((l) => /^\d+\/11 Copying files to ap-southeast-1/.test(l)), r.out);
  for (const l of live) assert.ok([...l].length <= 59, `wider than 59 columns: "${l}"`);
  assert.match(r.out, /Moved: \S+ is served from ap-southeast-1 \(\d+(\.\d)? m?s in all, writes paused \d+(\.\d)? m?s\)/);
  const id = /migration (\S+) queued/.exec(r.out)[1];
  assert.match(r.out, new RegExp(`regionmove migrations reverse ${app} ${id}`));
  assert.match(r.out, new RegExp(`regionmove replicas teardown ${id}`));
});

test('CLI: Ctrl-C while following ends the line and says the move goes on', async () => {
  const { base } = await startServer(makeConfig(), { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:1500:2' });
  const app = await createApp(base, ALICE);
  await rest(base, ALICE, 'PUT', `/v1/apps/${app}/blobs/a.bin`, 'x'.repeat(1024));
  let typed = false;
  const r = await onTerminal(60, base, ['move', app, 'eu-west-1', '--follow'], (out, proc) => {
    if (!typed && /Copying files/.test(out)) {
      typed = true;
      proc.stdin.write('\x03');  // Ctrl-C, as typed: the terminal sends SIGINT
    }
  });
  assert.equal(r.code, 130, r.out);
  assert.match(r.out, /\r?\nStopped following; migration (\S+) continues on the server/);
  const id = /migration (\S+) queued/.exec(r.out)[1];
  assert.match(r.out, new RegExp(`regionmove migrations status ${app} ${id} --follow`));
  // And it does go on.
  await waitFor('the move completes', async () =>
    (await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`)).body.status === 'completed');
});

test('CLI: --follow --json prints one migration per change and exits with the documented status', async () => {
  const { base } = await startServer(makeConfig(), { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:1500:1' });
  const app = await createApp(base, ALICE);
  const moved = cli(base, ALICE, 'move', app, 'eu-west-1', '--follow', '--json');
  assert.equal(moved.code, 0, moved.err);
  const lines = moved.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 2, moved.out);
  const last = lines.at(-1);
  assert.equal(last.status, 'completed');
  assert.equal(last.current_step, 'completed');
  assert.equal(typeof last.writes_paused_seconds, 'number');
  const indexes = lines.map((m) => m.progress.step_index);
  assert.deepEqual(indexes, [...indexes].sort((a, b) => a - b), 'steps only go forward');

  // Aborted while followed: exit status 3, the last line says aborted.
  const app2 = await createApp(base, ALICE);
  await rest(base, ALICE, 'PUT', `/v1/apps/${app2}/blobs/a.bin`, 'data');
  const follower = spawn(BIN, ['move', app2, 'eu-west-1', '--follow', '--json'], {
    env: { ...process.env, REGIONMOVE_SERVER: base, REGIONMOVE_TOKEN: ALICE }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  follower.stdout.on('data', (c) => { out += c; });
  const exited = new Promise((done) => follower.on('exit', (code) => done(code)));
  await waitFor('the move copies blobs', async () => /"current_step":"copying_blobs"/.test(out));
  const id = JSON.parse(out.split('\n')[0]).migration_id;
  assert.equal((await rest(base, ALICE, 'POST', `/v1/apps/${app2}/migrations/${id}/abort`)).status, 202);
  assert.equal(await exited, 3, out);
  assert.equal(JSON.parse(out.trim().split('\n').at(-1)).status, 'aborted');

  const unknown = cli(base, ALICE, 'mvoe', app, 'eu-west-1');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'mvoe' \(did you mean 'move'\?\)/);
  assert.match(cli(base, ALICE, 'migrations', 'lst', app).err, /did you mean 'list'/);
  assert.match(cli(base, ALICE, '--help').out, /Exit status: 0 .* 3 .*aborted, 4 it failed, 130/);
});

test('demo: any config with two regions, every migration id printed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'regionmove-demo-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'two.toml');
  writeFileSync(config, '[server]\ndata_dir = "var"\n[[users]]\nname = "ops"\ntoken = "ops-token"\n' +
    '[[regions]]\nslug = "us-east-1"\ndatabase = { engine = "sqlite", dir = "regions/us-east-1/db" }\n' +
    'blobs = { engine = "fs", dir = "regions/us-east-1/blobs" }\n' +
    '[[regions]]\nslug = "eu-central-1"\ndatabase = { engine = "sqlite", dir = "regions/eu/db" }\n' +
    'blobs = { engine = "fs", dir = "regions/eu/blobs" }\n');
  const r = spawnSync(BIN, ['demo', '--config', config, '--rows', '50', '--blob-mib', '1'],
    { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /regions us-east-1, eu-central-1; the app's owner is ops/);
  const ids = [...r.stdout.matchAll(/(?:migration|reverse) ([0-9a-f-]{36}) (?:queued|takes)/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, 3, r.stdout);
  assert.match(r.stdout, /5\. Moving it again, to eu-central-1/);
  assert.match(r.stdout, /replica state: torn_down; database left in us-east-1: no/);
});
