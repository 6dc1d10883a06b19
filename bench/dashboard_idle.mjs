// What an open dashboard costs the server while nothing happens: regionmove serve's CPU time and
// requests over a window with no client, with N idle dashboards (Chromium, the apps page, its
// GET /v1/events long polls), and with N naive pollers that re-read the apps list and a
// migration every 2 s (the peer: what a dashboard without a change stream would do).
//
//   node bench/dashboard_idle.mjs [SECONDS=30] [N=10]
//
// Needs the node packages of tests/node (make test-deps) and Debian's chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, '../tests/node/package.json'));
const { chromium } = require('playwright-core');
const BIN = process.env.REGIONMOVE_BIN ?? resolve(here, '../build/regionmove');
const seconds = Number(process.argv[2] ?? 30);
const n = Number(process.argv[3] ?? 10);
const TOKEN = 'alice-dev-token';

const dir = mkdtempSync(join(tmpdir(), 'regionmove-dash-bench-'));
writeFileSync(join(dir, 'regionmove.toml'), `[server]\ndata_dir = "${dir}/var"\n`);
const server = spawn(BIN, ['serve', '--config', join(dir, 'regionmove.toml'), '--listen', '127.0.0.1:0'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
const base = await new Promise((done, fail) => {
  let log = '';
  server.stderr.on('data', (c) => {
    log += c;
    const m = /serving on (http:\/\/[0-9.:]+)/.exec(log);
    if (m) done(m[1]);
  });
  server.once('exit', () => fail(new Error(log)));
});
const ticksPerSecond = 100; // Linux's USER_HZ
const cpu = () => {
  const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond; // utime + stime
};
const rss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]) / 1024;
const requests = async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^regionmove_http_requests_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
};
const api = async (method, path, body) => (await fetch(base + path, {
  method, headers: { Authorization: `Bearer ${TOKEN}` }, body: body && JSON.stringify(body) })).json();

// Some apps with a completed move each, so that the pages have something to show.
let app;
let mig;
for (let i = 0; i < 5; i++) {
  app = (await api('POST', '/v1/apps', { name: `shop${i}`, region: 'us-east-1' })).app_id;
  mig = (await api('POST', `/v1/apps/${app}/move`, { dest_region: 'eu-west-1' })).migration_id;
}
for (;;) {
  const m = await api('GET', `/v1/apps/${app}/migrations/${mig}`);
  if (m.status === 'completed') break;
  await new Promise((s) => setTimeout(s, 100));
}

async function window(what) {
  const c0 = cpu();
  const r0 = await requests();
  await new Promise((s) => setTimeout(s, seconds * 1000));
  const c1 = cpu();
  const r1 = await requests();
  return { what, cpu: c1 - c0, requests: r1 - r0 - 1 }; // less the /metrics read itself
}

const rows = [];
await new Promise((s) => setTimeout(s, 1000));
rows.push(await window('no client'));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });
const pages = [];
for (let i = 0; i < n; i++) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/ui/`);
  await page.getByLabel('API token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
  await page.goto(`${base}/ui/#/apps/${app}/migrations/${mig}`);
  await page.getByRole('heading', { name: 'Steps' }).waitFor();
  pages.push(page);
}
await new Promise((s) => setTimeout(s, 2000)); // their first polls parked
rows.push(await window(`${n} idle dashboards (long polls)`));
await browser.close();

let polling = true;
const pollers = Array.from({ length: n }, async () => {
  while (polling) {
    await Promise.all([api('GET', '/v1/apps'), api('GET', `/v1/apps/${app}/migrations/${mig}`),
      api('GET', `/v1/apps/${app}/migrations/${mig}/events`)]);
    await new Promise((s) => setTimeout(s, 2000));
  }
});
rows.push(await window(`${n} pollers every 2 s (peer)`));
polling = false;
await Promise.all(pollers);

console.log(`server CPU and requests over ${seconds} s windows (${n} clients)`);
console.log('case                                   CPU s   CPU %   requests/min');
for (const r of rows) {
  console.log(`${r.what.padEnd(38)} ${r.cpu.toFixed(2).padStart(6)} ${(100 * r.cpu / seconds).toFixed(2).padStart(6)}% ${(r.requests * 60 / seconds).toFixed(1).padStart(10)}`);
}
console.log(`peak RSS of the server: ${rss().toFixed(1)} MiB`);
// What the clients add to the server's own idle cost (its saga workers polling the store).
const [idle, dash, peer] = rows;
const added = (r) => Math.max(0, r.cpu - idle.cpu) * 60 / seconds;
console.log('RESULT ' + JSON.stringify({
  work: `${n} idle dashboards: server CPU seconds per minute added`,
  command: `node bench/dashboard_idle.mjs ${seconds} ${n}`,
  ours: added(dash), unit: 'CPU s/min', peer: `${n} clients polling every 2 s`,
  peer_value: added(peer), ratio: added(peer) > 0 ? added(dash) / added(peer) : null,
  rss_mib: rss(), target: 'nothing measurable (< 0.6 CPU s/min: 1 % of a core)', met: added(dash) < 0.6,
}));
server.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
