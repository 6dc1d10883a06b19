// Shared by the out-of-process tests: configs in temp dirs, regionmove processes, REST calls.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { request } from 'node:http';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.REGIONMOVE_BIN ?? resolve(here, '../../build/regionmove');
export const ALICE = 'alice-mcp-token';
export const BOB = 'bob-mcp-token';
export const cleanups = [];
after(async () => { for (const fn of cleanups.reverse()) await fn(); });

// The local PostgreSQL clusters of scripts/pg-regions, one per region of makeConfig.
export const PG_PORTS = { 'us-east-1': 54321, 'eu-west-1': 54322, 'ap-southeast-1': 54323 };

// Runs one SQL statement on a region's cluster (database `db`); returns psql's output.
export function pgSql(region, sql, db = 'postgres') {
  const r = spawnSync('psql', ['-X', '-qAt', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p',
    String(PG_PORTS[region]), '-U', 'postgres', '-d', db, '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql on ${region}: ${r.stderr}`);
  return r.stdout.trim();
}

// A config in a fresh temp dir; `saga` adds lines to its [saga] section; `engine` is the
// regions' database engine ("sqlite", or "postgres" on the clusters of scripts/pg-regions);
// `extra` is appended (more sections).
// With `blobs = 's3'`, eu-west-1 and ap-southeast-1 keep their blobs in a bucket of the local S3
// server of scripts/s3-local (one bucket per config; us-east-1 stays on fs).
export const S3_ENDPOINT = process.env.REGIONMOVE_S3_ENDPOINT ?? 'http://127.0.0.1:4569';
// `regionKeys` maps a region's slug to more of its keys (TOML lines).
export function makeConfig(saga = '', engine = 'sqlite', extra = '', blobs = 'fs', regionKeys = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'regionmove-mcp-'));
  const bucket = `rm-node-${Math.random().toString(36).slice(2, 12)}`;
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  let toml = `[server]\ndata_dir = "var"\n[saga]\nworkers = 2\n${saga}` +
    `[[users]]\nname = "alice"\ntoken = "${ALICE}"\n[[users]]\nname = "bob"\ntoken = "${BOB}"\n`;
  for (const slug of ['us-east-1', 'eu-west-1', 'ap-southeast-1']) {
    const database = engine === 'postgres'
      ? `{ engine = "postgres", dsn = "postgresql://postgres@127.0.0.1:${PG_PORTS[slug]}/postgres" }`
      : `{ engine = "sqlite", dir = "regions/${slug}/db" }`;
    const blobStore = blobs === 's3' && slug !== 'us-east-1'
      ? `{ engine = "s3", endpoint = "${S3_ENDPOINT}", bucket = "${bucket}", prefix = "${slug}", ` +
        'access_key_id = "S3RVER", secret_access_key = "S3RVER" }'
      : `{ engine = "fs", dir = "regions/${slug}/blobs" }`;
    toml += `[[regions]]\nslug = "${slug}"\ndatabase = ${database}\nblobs = ${blobStore}\n` +
      (regionKeys[slug] ?? '');
  }
  const path = join(dir, 'regionmove.toml');
  writeFileSync(path, toml + extra);
  if (blobs === 's3') s3Buckets.set(path, bucket);
  return path;
}

const s3Buckets = new Map();
// The keys of the objects under `prefix` in the S3 bucket of config `path` (s3rver answers
// unsigned listings).
export async function s3Keys(path, prefix) {
  const res = await fetch(`${S3_ENDPOINT}/${s3Buckets.get(path)}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  assert.equal(res.status, 200);
  return [...(await res.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

// Runs regionmove with `args` until its stderr matches `ready`; resolves to
// { match, stop, log() }. The process is stopped (SIGTERM) at the end of the file's tests.
export function startProcess(args, ready, env = {}) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((done) => proc.once('exit', (code, signal) => done({ code, signal })));
    let log = '';
    let started = false;
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${log}`)), 15000);
    const stop = () => new Promise((done) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return done();
      proc.once('exit', () => done());
      proc.kill('SIGTERM');
    });
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = ready.exec(log);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        cleanups.push(stop);
        resolvePromise({ match: m, stop, log: () => log, exited, proc });
      }
    });
    proc.on('exit', (code) => { if (!started) reject(new Error(`${args[0]} exited ${code}: ${log}`)); });
  });
}

// Starts `regionmove serve` on a free port; resolves to { base, stop }.
export async function startServer(config, env = {}, extraArgs = []) {
  const p = await startProcess(['serve', '--config', config, '--listen', '127.0.0.1:0', ...extraArgs],
    /serving on (http:\/\/[0-9.:]+)/, env);
  return { base: p.match[1], stop: p.stop, exited: p.exited, log: p.log };
}

export async function rest(base, token, method, path, body) {
  const res = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function createApp(base, token, rows = 50) {
  const app = await rest(base, token, 'POST', '/v1/apps', { name: 'shop', region: 'us-east-1' });
  assert.equal(app.status, 201, JSON.stringify(app.body));
  const id = app.body.app_id;
  await rest(base, token, 'POST', `/v1/apps/${id}/tables`,
    { name: 'orders', columns: [{ name: 'total', type: 'real' }] });
  const data = Array.from({ length: rows }, (_, i) => ({ id: `o${i}`, total: i }));
  assert.equal((await rest(base, token, 'POST', `/v1/apps/${id}/tables/orders`, data)).status, 201);
  return id;
}

// createApp, plus one small blob (so that a move has a page of blobs to copy: fault points
// such as copying_blobs.after_page then fire).
export async function createAppWithBlob(base, token, rows = 10) {
  const app = await createApp(base, token, rows);
  const put = await fetch(`${base}/v1/apps/${app}/blobs/logo`,
    { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: 'x'.repeat(1000) });
  assert.equal(put.status, 201);
  return app;
}

// The ids of every row of an app's table (keyset-paged listing), as a Set.
export async function rowIds(base, token, app, table) {
  const ids = new Set();
  let after = '';
  for (;;) {
    const page = await rest(base, token, 'GET', `/v1/apps/${app}/tables/${table}?limit=1000&after=${after}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    for (const row of page.body.rows) ids.add(row.id);
    if (page.body.next_after === null) return ids;
    after = page.body.next_after;
  }
}

// A TCP port free on loopback now (for servers that need one in their config).
export async function freePort() {
  const srv = createServer();
  await new Promise((done) => srv.listen(0, '127.0.0.1', done));
  const { port } = srv.address();
  await new Promise((done) => srv.close(done));
  return port;
}

// One HTTP request with any Host header (fetch does not let a caller set it); resolves to
// { status, headers, body }.
export function httpRequest(port, method, path, { host, headers = {}, body } = {}) {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false,
      headers: { ...(host ? { Host: host } : {}), ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => done({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

// Polls `fn` until it returns something truthy (bounded); returns that.
export async function waitFor(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await new Promise((s) => setTimeout(s, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
