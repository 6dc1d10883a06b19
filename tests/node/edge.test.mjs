// An nginx edge that follows the routing feed (SPEC §7 "Integration"): Debian's nginx on
// loopback in front of two upstream servers standing for two regions, kept in step by
// `regionmove edge nginx`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ALICE, BIN, cleanups, createAppWithBlob, freePort, httpRequest, makeConfig, rest, startProcess,
  startServer, waitFor,
} from './helpers.mjs';

const EDGE = 'edge-feed-token';

// A server standing for a region's app servers: says which region answered, to anything.
async function regionServer(slug) {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ region: slug, method: req.method, host: req.headers.host }));
    });
  });
  await new Promise((done) => srv.listen(0, '127.0.0.1', done));
  cleanups.push(() => new Promise((done) => srv.close(done)));
  return srv.address().port;
}

async function startNginx(dir, maps) {
  const port = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const snippet = spawnSync(BIN, ['edge', 'nginx', '--snippet'], { encoding: 'utf8' }).stdout;
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  include ${maps};
  server {
    listen 127.0.0.1:${port};
    server_name _;
${snippet}
  }
}
`);
  const args = ['-p', prefix, '-c', conf];
  const proc = spawn('nginx', [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (c) => { log += c; });
  cleanups.push(() => new Promise((done) => {
    if (proc.exitCode !== null) return done();
    proc.once('exit', () => done());
    proc.kill('SIGQUIT');
  }));
  await waitFor(`nginx to listen (${log})`, async () => {
    try {
      return (await httpRequest(port, 'GET', '/', { host: 'nobody.invalid' })).status === 404;
    } catch {
      return false;
    }
  }, 10000);
  return { port, reload: `nginx ${args.join(' ')} -s reload` };
}

function regionOf(answer) {
  try {
    return JSON.parse(answer.body).region ?? null;
  } catch {
    return null;
  }
}

// Waits until a GET of `host` through the edge reaches `slug`; resolves to the time it did.
async function reaches(port, host, slug, ms = 10000) {
  await waitFor(`${host} to reach ${slug}`, async () =>
    regionOf(await httpRequest(port, 'GET', '/orders', { host })) === slug, ms);
  return Date.now();
}

// Long-polls the feed until `app` is served from `slug`; resolves to the time that was seen.
async function feedShows(base, app, slug) {
  let version = 0;
  for (;;) {
    const res = await fetch(`${base}/v1/routing?since=${version}&wait=30`,
      { headers: { Authorization: `Bearer ${EDGE}` } });
    if (res.status === 304) continue;
    assert.equal(res.status, 200);
    const feed = await res.json();
    version = feed.version;
    if (feed.apps.find((a) => a.app_id === app)?.region === slug) return Date.now();
  }
}

test('nginx follows the flips of a move and of its fast reverse, and refuses writes during the blocks', { timeout: 120000 }, async () => {
  const east = await regionServer('us-east-1');
  const west = await regionServer('eu-west-1');
  const config = makeConfig('', 'sqlite',
    `[[users]]\nname = "edge"\ntoken = "${EDGE}"\nrole = "edge"\n`, 'fs',
    { 'us-east-1': `upstream = "127.0.0.1:${east}"\n`, 'eu-west-1': `upstream = "127.0.0.1:${west}"\n` });
  // Both moves spend 2 s with writes blocked, copying the app's blob.
  const { base } = await startServer(config, { REGIONMOVE_FAULTS: 'copying_blobs.after_page=delay:2000:2' });
  const app = await createAppWithBlob(base, ALICE);
  const sub = `${(await rest(base, ALICE, 'GET', `/v1/apps/${app}`)).body.subdomain}.apps.localhost`;
  const custom = 'shop.example.test';
  assert.equal((await rest(base, ALICE, 'PUT', `/v1/apps/${app}/domains/${custom}`, {})).status, 201);

  const dir = dirname(config);
  const maps = join(dir, 'regionmove-maps.conf');
  const once = spawnSync(BIN, ['edge', 'nginx', '--server', base, '--token', EDGE, '--out', maps, '--once'],
    { encoding: 'utf8' });
  assert.equal(once.status, 0, once.stderr);
  const nginx = await startNginx(dir, maps);
  await startProcess(['edge', 'nginx', '--server', base, '--token', EDGE, '--out', maps,
    '--reload-cmd', nginx.reload, '--wait', '20'], /edge_following/, {});

  for (const host of [sub, custom]) {
    assert.equal(regionOf(await httpRequest(nginx.port, 'GET', '/orders', { host })), 'us-east-1');
  }
  assert.equal((await httpRequest(nginx.port, 'GET', '/', { host: 'other.example.test' })).status, 404);

  // A move, then its fast reverse: the same checks each way.
  const legs = [['us-east-1', 'eu-west-1'], ['eu-west-1', 'us-east-1']];
  let forward = null;
  for (const [from, to] of legs) {
    const start = forward
      ? await rest(base, ALICE, 'POST', `/v1/apps/${app}/migrations/${forward}/reverse`)
      : await rest(base, ALICE, 'POST', `/v1/apps/${app}/move`, { dest_region: to });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    if (forward) assert.equal(start.body.path, 'fast');
    const id = start.body.migration_id;
    const flipSeen = feedShows(base, app, to);
    // During the block: writes through the edge get 503 + Retry-After, reads still pass.
    const refused = await waitFor('a write refused by the edge', async () => {
      const w = await httpRequest(nginx.port, 'POST', '/orders', { host: custom, body: '{}' });
      return w.status === 503 ? w : null;
    }, 15000);
    assert.match(refused.headers['retry-after'], /^[1-9][0-9]*$/);
    assert.equal(JSON.parse(refused.body).error, 'app_migrating');
    const read = await httpRequest(nginx.port, 'GET', '/orders', { host: sub });
    assert.equal(read.status, 200);
    assert.equal(regionOf(read), from);
    // The flip: both hosts reach the new region within a second of the feed saying so.
    const flippedAt = await flipSeen;
    for (const host of [sub, custom]) {
      const at = await reaches(nginx.port, host, to);
      assert.ok(at - flippedAt < 1000, `${host} reached ${to} ${at - flippedAt} ms after the flip`);
      console.log(`${host} reached ${to} ${at - flippedAt} ms after the feed showed the flip`);
    }
    await waitFor('the migration to complete', async () =>
      (await rest(base, ALICE, 'GET', `/v1/apps/${app}/migrations/${id}`)).body.status === 'completed');
    const write = await waitFor('writes to pass again', async () => {
      const w = await httpRequest(nginx.port, 'POST', '/orders', { host: custom, body: '{}' });
      return w.status === 200 ? w : null;
    }, 5000);
    assert.equal(regionOf(write), to);
    forward = forward ?? id;
  }
});
