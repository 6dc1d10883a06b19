// regionmove's MCP server driven by the official MCP TypeScript SDK, over Streamable HTTP and
// over stdio (client mode and in-process mode): the agent flow of the seed and its error cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ALICE, BIN, BOB, cleanups, createApp, makeConfig, rest, startServer } from './helpers.mjs';

async function call(client, name, args = {}) {
  const r = await client.callTool({ name, arguments: args });
  // First a sentence to act on, then the result as JSON text (for clients without
  // structuredContent).
  assert.ok(Array.isArray(r.content) && r.content.every((c) => c.type === 'text'), 'text content');
  assert.ok(r.content[0].text.length > 10 && !r.content[0].text.startsWith('{'), r.content[0].text);
  assert.deepEqual(JSON.parse(r.content[1].text), r.structuredContent, 'text renders the result');
  return r;
}

async function waitDone(client, appId, migrationId, until = (m) =>
  ['completed', 'aborted', 'failed'].includes(m.status)) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const r = await call(client, 'move_app_status', { app_id: appId, migration_id: migrationId });
    assert.equal(r.isError, false, JSON.stringify(r.structuredContent));
    if (until(r.structuredContent)) return r.structuredContent;
    await new Promise((s) => setTimeout(s, 25));
  }
  throw new Error(`migration ${migrationId} did not get there`);
}

async function checkTools(client) {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(Object.keys(byName).sort(), ['list_apps', 'list_regions', 'manage_migrations', 'move_app',
    'move_app_status', 'teardown_source_replica']);
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object');
    assert.ok(t.title && t.description.length > 100, t.name);
    assert.equal(typeof t.annotations.readOnlyHint, 'boolean');
    assert.equal(typeof t.annotations.destructiveHint, 'boolean');
    assert.equal(typeof t.annotations.idempotentHint, 'boolean');
  }
  assert.deepEqual(byName.move_app.inputSchema.required, ['app_id', 'dest_region']);
  assert.deepEqual(byName.manage_migrations.inputSchema.properties.action.enum,
    ['get_active', 'list', 'abort', 'reverse', 'list_source_replicas']);
  assert.equal(byName.list_regions.annotations.readOnlyHint, true);
  assert.equal(byName.teardown_source_replica.annotations.destructiveHint, true);
  assert.match(byName.move_app.description, /flipping_routing/);
  assert.match(byName.manage_migrations.description, /fast/);
  assert.match(byName.teardown_source_replica.description, /slow/);
}

// The seed's agent flow: list_regions -> move_app -> poll -> replicas -> reverse -> poll ->
// teardown.
async function agentFlow(client, appId) {
  const regions = await call(client, 'list_regions');
  const dest = regions.structuredContent.regions.find((r) => r.slug === 'eu-west-1');
  assert.equal(dest.accepting_moves, true);
  const move = await call(client, 'move_app', { app_id: appId, dest_region: 'eu-west-1' });
  assert.equal(move.isError, false, JSON.stringify(move.structuredContent));
  assert.equal(move.structuredContent.status, 'queued');
  const moved = await waitDone(client, appId, move.structuredContent.migration_id);
  assert.equal(moved.status, 'completed');
  assert.equal(moved.source_replica_state, 'replicating');
  const replicas = await call(client, 'manage_migrations', { action: 'list_source_replicas' });
  const mine = replicas.structuredContent.source_replicas
    .find((r) => r.migration_id === move.structuredContent.migration_id);
  assert.ok(mine && mine.size_bytes > 0 && 'estimated_monthly_cost_usd' in mine);
  const active = await call(client, 'manage_migrations', { action: 'get_active', app_id: appId });
  assert.equal(active.structuredContent.migration, null);
  const rev = await call(client, 'manage_migrations',
    { action: 'reverse', app_id: appId, migration_id: move.structuredContent.migration_id });
  assert.equal(rev.isError, false, JSON.stringify(rev.structuredContent));
  assert.equal(rev.structuredContent.path, 'fast');
  const reversed = await waitDone(client, appId, rev.structuredContent.migration_id);
  assert.equal(reversed.status, 'completed');
  assert.equal(reversed.dest_region, 'us-east-1');
  const torn = await call(client, 'teardown_source_replica',
    { migration_id: rev.structuredContent.migration_id });
  assert.equal(torn.isError, false, JSON.stringify(torn.structuredContent));
  assert.equal(torn.structuredContent.status, 'torn_down');
  const again = await call(client, 'teardown_source_replica',
    { migration_id: rev.structuredContent.migration_id });
  assert.equal(again.isError, true);
  assert.equal(again.structuredContent.error, 'not_replicating');
}

test('Streamable HTTP: tools, agent flow and errors', async () => {
  const config = makeConfig();
  // The first move to reach unblocking_writes lingers there, so an abort can arrive after the
  // cutover.
  const { base } = await startServer(config, { REGIONMOVE_FAULTS: 'unblocking_writes=delay:2000:1' });
  const late = await createApp(base, ALICE);
  const app = await createApp(base, ALICE);
  const bobs = await createApp(base, BOB);
  const transport = new StreamableHTTPClientTransport(new URL(base + '/mcp'),
    { requestInit: { headers: { Authorization: `Bearer ${ALICE}` } } });
  const client = new Client({ name: 'regionmove-test', version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => client.close());
  assert.ok(transport.sessionId, 'the server assigned a session id');
  assert.equal(client.getServerVersion().name, 'regionmove');
  await checkTools(client);

  // Abort after the cutover is refused and says to reverse.
  const m = await call(client, 'move_app', { app_id: late, dest_region: 'ap-southeast-1' });
  const id = m.structuredContent.migration_id;
  await waitDone(client, late, id, (s) => s.current_step === 'unblocking_writes' ||
    ['completed', 'aborted', 'failed'].includes(s.status));
  const abort = await call(client, 'manage_migrations',
    { action: 'abort', app_id: late, migration_id: id });
  assert.equal(abort.isError, true);
  assert.equal(abort.structuredContent.error, 'cutover_passed');
  assert.match(abort.structuredContent.message, /reverse/);
  assert.equal((await waitDone(client, late, id)).status, 'completed');

  await agentFlow(client, app);

  const unknown = await call(client, 'move_app', { app_id: app, dest_region: 'mars-1' });
  assert.equal(unknown.isError, true);
  assert.equal(unknown.structuredContent.error, 'invalid_region');
  const missing = await call(client, 'move_app', { app_id: app });
  assert.equal(missing.isError, true);
  assert.match(missing.content[0].text, /dest_region/);
  const foreign = await call(client, 'move_app', { app_id: bobs, dest_region: 'eu-west-1' });
  assert.equal(foreign.isError, true);
  assert.equal(foreign.structuredContent.error, 'not_found');
  const foreignStatus = await call(client, 'manage_migrations', { action: 'get_active', app_id: bobs });
  assert.equal(foreignStatus.structuredContent.error, 'not_found');
  await assert.rejects(client.callTool({ name: 'fly_app', arguments: {} }), /Unknown tool/);

  // Without a token there is no session at all.
  const anon = new Client({ name: 'anon', version: '1.0.0' });
  await assert.rejects(anon.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'))));
});

test('stdio, client of a running server', async () => {
  const { base } = await startServer(makeConfig());
  const app = await createApp(base, ALICE);
  const client = new Client({ name: 'regionmove-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({
    command: BIN, args: ['mcp', '--server', base, '--token', ALICE], stderr: 'ignore',
  }));
  cleanups.push(() => client.close());
  await checkTools(client);
  await agentFlow(client, app);
  const missing = await call(client, 'manage_migrations', { action: 'abort', app_id: app });
  assert.equal(missing.isError, true);
  assert.match(missing.content[0].text, /migration_id/);
});

test('stdio, in process on a config file', async () => {
  const config = makeConfig();
  const server = await startServer(config);
  const app = await createApp(server.base, ALICE);
  await server.stop();  // the in-process MCP server takes over the same data
  const client = new Client({ name: 'regionmove-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({
    command: BIN, args: ['mcp', '--config', config, '--user', 'alice'], stderr: 'ignore',
  }));
  cleanups.push(() => client.close());
  await checkTools(client);
  await agentFlow(client, app);
});

// An agent that knows nothing but its token: finds its app, moves it, loses the migration id and
// finds it again, reverses it, tears the replica down, then reverses a later move the slow way,
// reading only the tools' sentences for ids and next steps.
test('an agent from nothing but a token: discover, move, lose the id, reverse, teardown, slow reverse', async () => {
  const { base } = await startServer(makeConfig());
  const created = await createApp(base, ALICE);  // made by someone else, earlier
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'),
    { requestInit: { headers: { Authorization: `Bearer ${ALICE}` } } }));
  cleanups.push(() => client.close());
  const text = (r) => r.content[0].text;
  const idIn = (sentence) => /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(sentence)[0];

  const apps = await call(client, 'list_apps');
  assert.match(text(apps), /^You have 1 app\(s\): (app_\w+) 'shop' in us-east-1 \(ready\)/);
  const app = /(app_\w+)/.exec(text(apps))[1];
  assert.equal(app, created);
  const regions = await call(client, 'list_regions');
  assert.match(text(regions), /^3 regions: us-east-1 \(accepting moves\)/);

  const plan = await call(client, 'move_app', { app_id: app, dest_region: 'eu-west-1', dry_run: true });
  assert.match(text(plan), /^Dry run: moving \S+ from us-east-1 to eu-west-1 is eligible; writes would pause about \d+\.\d s offline or \d+\.\d s online; recommended strategy: offline\.$/);
  const moved = await call(client, 'move_app', { app_id: app, dest_region: 'eu-west-1' });
  assert.match(text(moved), /is queued to move .* Poll move_app_status/);
  // The id is lost; the app's active migration, or its list, gives it back.
  const active = await call(client, 'manage_migrations', { action: 'get_active', app_id: app });
  let id;
  if (active.structuredContent.migration === null) {
    assert.equal(text(active), `${app} has no active migration.`);  // it finished already
    const list = await call(client, 'manage_migrations', { action: 'list', app_id: app });
    assert.match(text(list), /^1 migration\(s\) of \S+, newest first: /);
    id = idIn(text(list));
  } else {
    assert.match(text(active), /^Migration \S+ of \S+ is (queued, )?at step \d+ of 11 \(/);
    id = idIn(text(active));
  }
  assert.equal(id, moved.structuredContent.migration_id);
  await waitDone(client, app, id);
  const done = await call(client, 'move_app_status', { app_id: app, migration_id: id });
  assert.match(text(done), /completed: the app is served from eu-west-1; writes were paused \d+(\.\d)? m?s\. The replica in us-east-1 is kept in sync: manage_migrations action=reverse/);
  const listed = await call(client, 'manage_migrations', { action: 'list', app_id: app });
  assert.match(text(listed), new RegExp(`${id} \\(move us-east-1 -> eu-west-1, completed, reversible\\)`));

  const rev = await call(client, 'manage_migrations', { action: 'reverse', app_id: app, migration_id: id });
  assert.match(text(rev), new RegExp(`^Reverse (\\S+) of ${id} is queued on the fast path`));
  const revId = rev.structuredContent.migration_id;
  assert.equal((await waitDone(client, app, revId)).status, 'completed');
  const replicas = await call(client, 'manage_migrations', { action: 'list_source_replicas' });
  assert.match(text(replicas), new RegExp(`^1 retained source replica\\(s\\): ${revId}: ${app} in eu-west-1, replicating`));
  const torn = await call(client, 'teardown_source_replica', { migration_id: revId });
  assert.match(text(torn), /torn down; a reverse of that move is now a slow full move back/);

  // A later move, its replica torn down: its reverse is the slow path, and completes.
  const later = await call(client, 'move_app', { app_id: app, dest_region: 'ap-southeast-1' });
  const laterId = later.structuredContent.migration_id;
  assert.equal((await waitDone(client, app, laterId)).status, 'completed');
  await call(client, 'teardown_source_replica', { migration_id: laterId });
  const afterTeardown = await call(client, 'move_app_status', { app_id: app, migration_id: laterId });
  assert.match(text(afterTeardown), /The replica in us-east-1 is torn_down; a reverse would be a slow full move back\./);
  const slow = await call(client, 'manage_migrations', { action: 'reverse', app_id: app, migration_id: laterId });
  assert.match(text(slow), /queued on the slow path/);
  assert.equal((await waitDone(client, app, slow.structuredContent.migration_id)).status, 'completed');
  const home = await call(client, 'list_apps');
  assert.match(text(home), new RegExp(`${app} 'shop' in us-east-1 \\(ready\\)`));

  const refused = await call(client, 'manage_migrations', { action: 'reverse', app_id: app, migration_id: id });
  assert.equal(refused.isError, true);
  assert.match(text(refused), /^Refused \(not_reversible\): /);
});
