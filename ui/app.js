// regionmove dashboard: a client of the REST API (SPEC §7), no framework, no build step.
// Signs in with an API token (kept in this tab's sessionStorage, sent as a Bearer header), and
// follows changes through GET /v1/events long polls (falling back to polling when they fail).
'use strict';

const TOKEN_KEY = 'regionmove.token';
const ADMIN_KEY = 'regionmove.admin';
const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  admin: sessionStorage.getItem(ADMIN_KEY) === '1',
};

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.body = body;
  }
}

async function api(method, path, body, options = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { message: 'the server cannot be reached' });
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.status === 401 && path !== '/v1/apps') signOut('Your token is no longer accepted. Sign in again.');
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child, ...). Text is always text
// (never parsed as HTML): names come from users.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the children of `el` (null, undefined and false are left out; arrays flattened).
function put(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Number(seconds);
  if (s < 0.05) return 'under 0.1 s';
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 90) return `${m} min ${Math.round(s - m * 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m - hours * 60} min`;
  return `${Math.round(hours / 24)} days`;
}

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function since(iso) {
  if (!iso) return null;
  return Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind || text}` }, text.replace(/_/g, ' '));
}

function table(caption, head, rows, emptyText) {
  if (rows.length === 0) return h('p', { class: 'empty' }, emptyText);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label || c)))),
      h('tbody', {}, rows)));
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function errorBox(err) {
  return h('p', { class: 'notice bad', role: 'alert' }, err.message || String(err));
}

// The dashboard's address of a migration's page.
function migrationHash(appId, migrationId) {
  return `#/apps/${encodeURIComponent(appId)}/migrations/${encodeURIComponent(migrationId)}`;
}

function stepLabel(name) {
  return name.replace(/_/g, ' ');
}

const STATUS_TEXT = {
  queued: 'Queued',
  running: 'Running',
  aborting: 'Aborting',
  completed: 'Completed',
  aborted: 'Aborted',
  failed: 'Failed',
};

// ---------------------------------------------------------------- dialogs

// A modal dialog (native <dialog>: focus stays inside, Escape closes). Returns it, open; it is
// removed when closed, and focus goes back to what opened it.
function openDialog(title, build) {
  const opener = document.activeElement;
  const id = `dialog-title-${Date.now()}`;
  const dialog = h('dialog', { 'aria-labelledby': id });
  dialog.append(h('h2', { id, tabindex: -1 }, title));
  const body = h('div', {});
  dialog.append(body);
  document.body.append(dialog);
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  });
  build(body, dialog);
  dialog.showModal();
  return dialog;
}

function confirmDialog({ title, text, confirm, danger, onConfirm }) {
  openDialog(title, (body, dialog) => {
    const err = h('div', {});
    const yes = h('button', { type: 'button', class: danger ? 'danger' : null }, confirm);
    const no = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      try {
        await onConfirm();
        dialog.close();
      } catch (e) {
        put(err, errorBox(e));
        yes.disabled = false;
      }
    });
    no.addEventListener('click', () => dialog.close());
    body.append(h('p', {}, text), err, h('div', { class: 'actions' }, yes, no));
    setTimeout(() => no.focus(), 0);
  });
}

// ---------------------------------------------------------------- the move dialog

async function openMoveDialog(app) {
  let regions;
  try {
    regions = (await api('GET', '/v1/regions')).regions;
  } catch (e) {
    announce(e.message);
    return;
  }
  openDialog(`Move ${app.name}`, (body, dialog) => {
    const choose = h('form', { novalidate: true });
    const planBox = h('div', {});
    const dest = h('select', { id: 'move-dest', name: 'dest', required: true },
      h('option', { value: '' }, 'Choose a region'),
      regions.filter((r) => r.slug !== app.region).map((r) =>
        h('option', { value: r.slug, disabled: !r.accepting_moves },
          `${r.name} (${r.slug})${r.accepting_moves ? '' : ` – ${r.status}, not accepting moves`}`)));
    const strategy = h('select', { id: 'move-strategy', name: 'strategy' },
      h('option', { value: '' }, 'Recommended for this app'),
      h('option', { value: 'offline' }, 'Offline: writes pause while the data is copied'),
      h('option', { value: 'online' }, 'Online: copies while writes go on, then a short pause'));
    const err = h('div', {});
    choose.append(
      h('p', {}, `The app is served from ${app.region} now (${bytes(app.size_bytes)}).`),
      h('label', { for: 'move-dest' }, 'Destination region'), dest,
      h('label', { for: 'move-strategy' }, 'Strategy'), strategy,
      err,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', id: 'move-review' }, 'Review the plan'),
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel')));
    choose.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      put(err);
      if (!dest.value) {
        err.append(h('p', { class: 'error', role: 'alert' }, 'Choose a destination region.'));
        dest.focus();
        return;
      }
      try {
        const plan = await api('POST', `/v1/apps/${encodeURIComponent(app.app_id)}/move`,
          { dest_region: dest.value, strategy: strategy.value || undefined, dry_run: true });
        showPlan(plan);
      } catch (e) {
        err.append(errorBox(e));
      }
    });

    const showPlan = (plan) => {
      choose.hidden = true;
      const eligible = plan.eligible !== false;
      const start = h('button', { type: 'button', id: 'move-start', disabled: !eligible }, 'Start the move');
      const back = h('button', { type: 'button', class: 'secondary' }, 'Back');
      const startErr = h('div', {});
      const heading = h('h3', { tabindex: -1, id: 'move-plan-title' },
        `Plan: ${app.region} → ${plan.dest_region}`);
      put(planBox, 
        heading,
        facts([
          ['Strategy', `${plan.strategy}${plan.recommended_strategy ? ` (recommended: ${plan.recommended_strategy})` : ''}`],
          ['Database', bytes(plan.sizes && plan.sizes.database_bytes)],
          ['Files', bytes(plan.sizes && plan.sizes.blob_bytes)],
          ['Estimated duration', duration(plan.estimated_duration_seconds)],
          ['Estimated write pause', duration(plan.estimated_write_block_seconds)],
          ['Steps', String(plan.steps)],
        ]),
        h('h3', {}, 'Checks'),
        h('ul', { class: 'checks' }, (plan.checks || []).map((c) =>
          h('li', {}, h('span', { class: c.ok ? 'ok' : 'no' }, c.ok ? 'Passed: ' : 'Failed: '), c.message || c.name))),
        eligible ? null : h('p', { class: 'notice bad', role: 'alert' }, 'This move cannot start; see the failed checks.'),
        startErr,
        h('div', { class: 'actions' }, start, back,
          h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel')));
      back.addEventListener('click', () => {
        put(planBox);
        choose.hidden = false;
        dest.focus();
      });
      start.addEventListener('click', async () => {
        start.disabled = true;
        try {
          const r = await api('POST', `/v1/apps/${encodeURIComponent(app.app_id)}/move`,
            { dest_region: plan.dest_region, strategy: plan.strategy });
          dialog.close();
          location.hash = migrationHash(app.app_id, r.migration_id);
        } catch (e) {
          put(startErr, errorBox(e));
          start.disabled = false;
        }
      });
      (eligible ? start : heading).focus();
    };
    body.append(choose, planBox);
    setTimeout(() => dest.focus(), 0);
  });
}

// ---------------------------------------------------------------- pages
// A page: {title, render(main) → builds the page, refresh() → reloads its data, wait() → how
// long a change poll may wait (short while something moves, for live bytes), tick()}.

function pageSignIn() {
  return {
    title: 'Sign in',
    render(main) {
      const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true,
        'aria-describedby': 'token-hint' });
      const err = h('div', {});
      const form = h('form', { class: 'signin' },
        h('label', { for: 'token' }, 'API token'),
        input,
        h('p', { class: 'hint', id: 'token-hint' }, 'A token from the server\'s [[users]] configuration. It is kept in this tab only.'),
        err,
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        put(err);
        session.token = input.value.trim();
        try {
          await api('GET', '/v1/apps');
        } catch (e) {
          session.token = null;
          err.append(h('p', { class: 'error', role: 'alert' },
            e.status === 401 ? 'That token is not accepted.' : e.message));
          input.focus();
          return;
        }
        try {
          await api('GET', '/v1/admin/region-state');
          session.admin = true;
        } catch (e) {
          session.admin = false;
        }
        sessionStorage.setItem(TOKEN_KEY, session.token);
        sessionStorage.setItem(ADMIN_KEY, session.admin ? '1' : '0');
        go('#/apps');
      });
      main.append(h('h1', { tabindex: -1 }, 'Sign in to regionmove'), form);
      setTimeout(() => input.focus(), 0);
    },
  };
}

function pageApps() {
  let apps = [];
  let filter = '';
  const body = h('div', {});
  const draw = () => {
    const f = filter.toLowerCase();
    const shown = apps.filter((a) => !f || [a.name, a.app_id, a.region, a.status, a.owner].some((v) => String(v).toLowerCase().includes(f)));
    put(body, table(`${shown.length} of ${apps.length} apps`,
      ['Name', 'Region', 'Status', { label: 'Size', num: true }, session.admin ? 'Owner' : null, 'Actions'].filter(Boolean),
      shown.map((a) => h('tr', {},
        h('td', {}, h('a', { href: `#/apps/${encodeURIComponent(a.app_id)}` }, a.name), h('div', { class: 'hint mono' }, a.app_id)),
        h('td', {}, a.region),
        h('td', {}, badge(a.status)),
        h('td', { class: 'num' }, bytes(a.size_bytes)),
        session.admin ? h('td', {}, a.owner) : null,
        h('td', {}, h('button', { type: 'button', class: 'secondary', id: `move-${a.app_id}`,
          disabled: a.status !== 'ready', 'aria-label': `Move ${a.name}`, onclick: () => openMoveDialog(a) }, 'Move…')))),
      apps.length ? 'No app matches the filter.' : 'No apps yet. Create one with POST /v1/apps or the CLI.'));
  };
  return {
    title: 'Apps',
    render(main) {
      const input = h('input', { id: 'filter', type: 'search', placeholder: 'name, id, region or status' });
      input.addEventListener('input', () => {
        filter = input.value;
        draw();
      });
      main.append(h('h1', { tabindex: -1 }, 'Apps'), h('label', { for: 'filter' }, 'Filter apps'), input, body);
    },
    async refresh() {
      apps = (await api('GET', '/v1/apps')).apps;
      draw();
    },
  };
}

function pageApp(appId) {
  let app = null;
  const body = h('div', {});
  const heading = h('h1', { tabindex: -1 }, 'App');
  return {
    title: 'App',
    render(main) {
      main.append(heading, body);
    },
    async refresh() {
      const path = `/v1/apps/${encodeURIComponent(appId)}`;
      const [a, list] = await Promise.all([api('GET', path), api('GET', `${path}/migrations`)]);
      app = a;
      heading.textContent = app.name;
      this.title = app.name;
      const active = list.migrations.find((m) => !['completed', 'aborted', 'failed'].includes(m.status));
      put(body, 
        facts([
          ['App ID', h('span', { class: 'mono' }, app.app_id)],
          ['Region', app.region],
          ['Status', badge(app.status)],
          ['Size', bytes(app.size_bytes)],
          ['Subdomain', app.subdomain || '–'],
          ['Created', when(app.created_at)],
        ]),
        active ? h('p', { class: 'notice info' }, 'A move is in progress: ',
          h('a', { href: migrationHash(appId, active.migration_id) }, active.step_label)) : null,
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'open-move', disabled: app.status !== 'ready', onclick: () => openMoveDialog(app) },
            'Move to another region…')),
        h('h2', {}, 'Migrations'),
        table('Newest first', ['Migration', 'Kind', 'From → to', 'Status', 'Started', 'Finished'],
          list.migrations.map((m) => h('tr', {},
            h('td', {}, h('a', { class: 'mono', href: migrationHash(appId, m.migration_id) }, m.migration_id)),
            h('td', {}, m.kind + (m.path ? ` (${m.path})` : '')),
            h('td', {}, `${m.source_region} → ${m.dest_region}`),
            h('td', {}, badge(m.status)),
            h('td', {}, when(m.initiated_at)),
            h('td', {}, when(m.completed_at)))),
          'This app has not moved yet.'));
    },
  };
}

function timeline(m, events) {
  const done = new Map();
  for (const e of events) {
    if (e.type === 'transition' && e.from) done.set(e.from, e);
  }
  const retries = new Map();
  for (const e of events) {
    if (e.type === 'retry' || e.type === 'compensation_retry') retries.set(e.step, (retries.get(e.step) || 0) + 1);
  }
  const terminal = ['completed', 'aborted', 'failed'].includes(m.status);
  const current = m.current_step;
  return h('ol', { class: 'timeline', 'aria-label': 'Steps' }, m.steps.map((s) => {
    const ev = done.get(s.step);
    let state = 'pending';
    let text = 'Pending';
    let detail = null;
    if (s.step === current && m.status === 'completed') {
      state = 'done';
      text = 'Done';
    } else if (ev && !(s.step === current && !terminal)) {
      state = 'done';
      text = 'Done';
      detail = `took ${duration((ev.duration_ms || 0) / 1000)}${ev.bytes ? `, ${bytes(ev.bytes)}` : ''}`;
    } else if (s.step === current && !terminal) {
      state = 'running';
      text = m.status === 'aborting' ? 'Undoing' : 'Running';
      const p = m.progress;
      const parts = [];
      const elapsed = since(m.step_started_at);
      if (elapsed !== null) parts.push(`for ${duration(elapsed)}`);
      if (p.bytes_total > 0) parts.push(`${bytes(p.bytes_done)} of ${bytes(p.bytes_total)}`);
      if (p.eta_seconds !== null && p.eta_seconds !== undefined) parts.push(`about ${duration(p.eta_seconds)} left`);
      if (p.lag_bytes !== null && p.lag_bytes !== undefined) parts.push(`replication lag ${bytes(p.lag_bytes)}`);
      detail = [parts.join(', '),
        p.bytes_total > 0 ? h('progress', { max: p.bytes_total, value: p.bytes_done, 'aria-label': `${s.label}: bytes copied` }) : null];
    } else if (terminal && m.status !== 'completed' && !ev) {
      state = 'stopped';
      text = 'Not run';
    }
    const r = retries.get(s.step);
    return h('li', { class: state },
      h('span', { class: 'state' }, text), s.label,
      detail || r ? h('span', { class: 'detail' }, detail, r ? ` ${r} ${r === 1 ? 'retry' : 'retries'}` : null) : null);
  }));
}

function pageMigration(appId, migrationId) {
  let m = null;
  let app = null;
  const heading = h('h1', { tabindex: -1 }, 'Migration');
  const body = h('div', {});
  const paused = h('span', {});
  const base = `/v1/apps/${encodeURIComponent(appId)}/migrations/${encodeURIComponent(migrationId)}`;
  const page = {
    title: 'Migration',
    render(main) {
      main.append(heading, body);
    },
    wait() {
      return m && ['queued', 'running', 'aborting'].includes(m.status) ? 2 : 25;
    },
    tick() {
      if (m && m.writes_blocked) paused.textContent = duration(since(m.writes_blocked_since));
    },
    async refresh() {
      const [mig, ev, a] = await Promise.all([api('GET', base), api('GET', `${base}/events`),
        app ? Promise.resolve(app) : api('GET', `/v1/apps/${encodeURIComponent(appId)}`)]);
      m = mig;
      app = a;
      const title = `${m.kind === 'reverse' ? 'Reverse' : 'Move'} of ${app.name}: ${m.source_region} → ${m.dest_region}`;
      heading.textContent = title;
      page.title = title;
      const actions = [];
      if (m.abortable) {
        actions.push(h('button', { type: 'button', class: 'danger', id: 'abort', onclick: () => confirmDialog({
          title: 'Abort this move?',
          text: `The move stops and undoes what it created; ${app.name} stays in ${m.source_region}.`,
          confirm: 'Abort the move',
          danger: true,
          onConfirm: async () => {
            await api('POST', `${base}/abort`, {});
            announce('Abort requested.');
            await refreshNow();
          },
        }) }, 'Abort…'));
      }
      if (m.reversible) {
        const fast = m.source_replica_state === 'replicating';
        const how = fast ? `fast: through the replica kept in ${m.source_region}` : `slow: a full move back to ${m.source_region}`;
        actions.push(h('button', { type: 'button', id: 'reverse', onclick: () => confirmDialog({
          title: 'Reverse this move?',
          text: `${app.name} goes back to ${m.source_region} (${how}).`,
          confirm: 'Reverse the move',
          onConfirm: async () => {
            const r = await api('POST', `${base}/reverse`, {});
            location.hash = migrationHash(appId, r.migration_id);
          },
        }) }, `Reverse (${fast ? 'fast' : 'slow'})…`));
      }
      if (m.needs_repair && session.admin) {
        actions.push(h('button', { type: 'button', id: 'repair', onclick: () => confirmDialog({
          title: 'Repair this migration?',
          text: 'The migration is driven again from the step it stopped at.',
          confirm: 'Repair',
          onConfirm: async () => {
            await api('POST', `/v1/admin/migrations/${encodeURIComponent(migrationId)}/repair`, {});
            await refreshNow();
          },
        }) }, 'Repair…'));
      }
      const status = h('p', {}, badge(m.status), ' ', m.step_label);
      put(body, 
        status,
        m.writes_blocked ? h('div', { class: 'notice warn', id: 'writes-paused' },
          h('strong', {}, 'Writes are paused'), 'Clients get 503 with Retry-After until the move resumes them; paused for ', paused, '.') : null,
        m.needs_repair ? h('div', { class: 'notice bad', role: 'alert' },
          h('strong', {}, 'Needs repair'),
          `The migration stopped at ${stepLabel(m.current_step)} and needs an operator. `,
          m.last_error ? `Last error: ${m.last_error}` : '',
          session.admin ? '' : ' Ask an admin to repair it.') : null,
        actions.length ? h('div', { class: 'actions' }, actions) : null,
        facts([
          ['Migration ID', h('span', { class: 'mono' }, m.migration_id)],
          ['Strategy', m.strategy],
          ['Step', `${m.progress.step_index} of ${m.progress.step_count}`],
          ['Started', when(m.initiated_at)],
          m.completed_at ? ['Finished', when(m.completed_at)] : null,
          m.writes_paused_seconds !== null ? ['Writes were paused for', duration(m.writes_paused_seconds)] : null,
          ['Retries', String(m.retry_count)],
          m.last_error && !m.needs_repair ? ['Last error', m.last_error] : null,
          m.reverse_of ? ['Reverses', h('a', { class: 'mono', href: migrationHash(appId, m.reverse_of) }, m.reverse_of)] : null,
          m.source_replica_state && m.source_replica_state !== 'none' ? ['Replica in the source region', m.source_replica_state.replace(/_/g, ' ')] : null,
        ]),
        h('h2', {}, 'Steps'),
        timeline(m, ev.events),
        h('h2', {}, 'History'),
        table('Events, oldest first', ['When', 'Event', 'Step', { label: 'Took', num: true }, 'Detail'],
          ev.events.map((e) => h('tr', {},
            h('td', {}, when(e.ended_at || e.started_at)),
            h('td', {}, e.type.replace(/_/g, ' ')),
            h('td', {}, e.type === 'transition' ? `${stepLabel(e.from)} → ${stepLabel(e.to)}` : stepLabel(e.step)),
            h('td', { class: 'num' }, e.duration_ms > 0 ? duration(e.duration_ms / 1000) : ''),
            h('td', {}, e.error || e.message || ''))),
          'No events yet.'));
      page.tick();
    },
  };
  return page;
}

function pageReplicas() {
  const body = h('div', {});
  return {
    title: 'Replicas',
    render(main) {
      main.append(h('h1', { tabindex: -1 }, 'Source replicas'),
        h('p', { class: 'hint' }, 'After a move, the source region keeps a replica of the database, kept in sync, so that a reverse is fast. It costs storage until it is torn down.'),
        body);
    },
    async refresh() {
      const [r, a] = await Promise.all([api('GET', '/v1/source-replicas'), api('GET', '/v1/apps')]);
      const names = new Map(a.apps.map((x) => [x.app_id, x.name]));
      const replicas = r.source_replicas.filter((x) => x.state !== 'torn_down');
      put(body, table('Retained replicas', ['App', 'Kept in', 'State', { label: 'Size', num: true },
        { label: 'Lag', num: true }, { label: 'Est. monthly cost', num: true }, 'Age', 'Actions'],
      replicas.map((x) => {
        const name = names.get(x.app_id) || x.app_id;
        return h('tr', {},
          h('td', {}, h('a', { href: migrationHash(x.app_id, x.migration_id) }, name)),
          h('td', {}, `${x.source_region} (app now in ${x.dest_region})`),
          h('td', {}, badge(x.state)),
          h('td', { class: 'num' }, bytes(x.size_bytes)),
          h('td', { class: 'num' }, x.lag_seconds === null || x.lag_seconds === undefined ? bytes(x.lag_bytes) : `${bytes(x.lag_bytes)}, ${duration(x.lag_seconds)}`),
          h('td', { class: 'num' }, `$${Number(x.estimated_monthly_cost_usd || 0).toFixed(2)}`),
          h('td', {}, duration(since(x.completed_at))),
          h('td', {}, h('button', { type: 'button', class: 'danger', id: `teardown-${x.migration_id}`, 'aria-label': `Tear down the replica of ${name}`,
            disabled: x.state === 'tearing_down', onclick: () => openTeardown(x, name) }, 'Tear down…')));
      }), 'No retained replicas.'));
    },
  };
}

function openTeardown(replica, name) {
  openDialog(`Tear down the replica of ${name}?`, (body, dialog) => {
    const input = h('input', { id: 'teardown-confirm', autocomplete: 'off', 'aria-describedby': 'teardown-hint' });
    const go = h('button', { type: 'button', class: 'danger', id: 'teardown-go', disabled: true }, 'Tear down the replica');
    const err = h('div', {});
    input.addEventListener('input', () => {
      go.disabled = input.value !== name;
    });
    go.addEventListener('click', async () => {
      go.disabled = true;
      try {
        await api('DELETE', `/v1/source-replicas/${encodeURIComponent(replica.migration_id)}`);
        dialog.close();
        announce(`The replica of ${name} is torn down.`);
        await refreshNow();
      } catch (e) {
        put(err, errorBox(e));
        go.disabled = input.value !== name;
      }
    });
    body.append(
      h('p', {}, `The replica in ${replica.source_region} is deleted. A reverse of this move then takes the slow path (a full move back).`),
      h('label', { for: 'teardown-confirm' }, `Type the app's name, ${name}, to confirm`),
      input,
      h('p', { class: 'hint', id: 'teardown-hint' }, 'The button is enabled once the name matches.'),
      err,
      h('div', { class: 'actions' }, go, h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel')));
    setTimeout(() => input.focus(), 0);
  });
}

function pageRegions() {
  const body = h('div', {});
  return {
    title: 'Regions',
    render(main) {
      main.append(h('h1', { tabindex: -1 }, 'Regions'), body);
    },
    async refresh() {
      const regions = (await api('GET', '/v1/regions')).regions;
      let state = null;
      if (session.admin) state = await api('GET', '/v1/admin/region-state');
      const counts = new Map();
      if (state) {
        for (const r of state.regions) counts.set(r.slug, r);
      } else {
        for (const a of (await api('GET', '/v1/apps')).apps) {
          const c = counts.get(a.region) || { apps: 0, bytes: 0 };
          c.apps++;
          c.bytes += a.size_bytes;
          counts.set(a.region, c);
        }
      }
      const used = (c) => {
        if (!c || !c.max_bytes) return '–';
        const share = Math.max(c.apps / c.max_apps, c.bytes / c.max_bytes);
        return `${(share * 100).toFixed(share < 0.1 ? 2 : 0)} % (${c.apps} of ${c.max_apps} apps, ${bytes(c.bytes)} of ${bytes(c.max_bytes)})`;
      };
      put(body, 
        state ? null : h('p', { class: 'hint' }, 'Apps and bytes count your apps; an admin sees every app and the capacity used.'),
        table('Regions', ['Region', 'Status', 'Accepting moves', { label: 'Apps', num: true }, { label: 'Bytes', num: true }, state ? 'Capacity used' : null].filter(Boolean),
          regions.map((r) => {
            const c = counts.get(r.slug) || { apps: 0, bytes: 0 };
            return h('tr', {},
              h('td', {}, r.name, h('div', { class: 'hint mono' }, r.slug)),
              h('td', {}, badge(r.status)),
              h('td', {}, r.accepting_moves ? 'Yes' : 'No'),
              h('td', { class: 'num' }, String(c.apps)),
              h('td', { class: 'num' }, bytes(c.bytes)),
              state ? h('td', {}, used(c)) : null);
          }), 'No regions are configured.'),
        state && state.unknown_regions.length ? h('p', { class: 'notice warn' },
          `Apps in regions the configuration no longer names: ${state.unknown_regions.map((u) => `${u.slug} (${u.apps})`).join(', ')}`) : null);
    },
  };
}

function pageAdmin() {
  const body = h('div', {});
  return {
    title: 'Admin',
    render(main) {
      main.append(h('h1', { tabindex: -1 }, 'Admin'), body);
    },
    async refresh() {
      if (!session.admin) {
        put(body, h('p', { class: 'notice bad', role: 'alert' }, 'This page needs an admin token.'));
        return;
      }
      const [summary, state] = await Promise.all([api('GET', '/v1/admin/migrations/summary'), api('GET', '/v1/admin/region-state')]);
      put(body, 
        facts([['Retained source replicas', String(summary.active_source_replicas)]]),
        h('h2', {}, 'Active migrations by step'),
        table('By step', ['Step', { label: 'Migrations', num: true }, 'Oldest in this step since'],
          summary.by_step.map((s) => h('tr', {}, h('td', {}, stepLabel(s.step)), h('td', { class: 'num' }, String(s.count)), h('td', {}, when(s.oldest_started_at)))),
          'No migration is active.'),
        h('h2', {}, 'Active migrations by region pair'),
        table('By region pair', ['From', 'To', { label: 'Migrations', num: true }],
          summary.by_region_pair.map((p) => h('tr', {}, h('td', {}, p.source_region), h('td', {}, p.dest_region), h('td', { class: 'num' }, String(p.count)))),
          'No migration is active.'),
        h('h2', {}, 'Region state'),
        table('Every app, by region', ['Region', 'Status', { label: 'Apps', num: true }, { label: 'Bytes', num: true }],
          state.regions.map((r) => h('tr', {}, h('td', { class: 'mono' }, r.slug), h('td', {}, badge(r.status)), h('td', { class: 'num' }, String(r.apps)), h('td', { class: 'num' }, bytes(r.bytes)))),
          'No regions.'));
    },
  };
}

// ---------------------------------------------------------------- routing and live updates

let current = null; // the page shown
let ticker = null;

function announce(text) {
  document.getElementById('live-state').textContent = text;
}

function signOut(message) {
  session.token = null;
  session.admin = false;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ADMIN_KEY);
  stopStream();
  go('#/');
  if (message) announce(message);
}

// Shows the page of `hash` (hashchange routes, unless the hash is already there).
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function pageFor(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch (e) {
    return null; // a malformed address: the apps list
  }
  if (parts[0] === 'apps' && parts.length === 1) return ['apps', pageApps()];
  if (parts[0] === 'apps' && parts.length === 2) return ['apps', pageApp(parts[1])];
  if (parts[0] === 'apps' && parts.length === 4 && parts[2] === 'migrations') return ['apps', pageMigration(parts[1], parts[3])];
  if (parts[0] === 'regions') return ['regions', pageRegions()];
  if (parts[0] === 'replicas') return ['replicas', pageReplicas()];
  if (parts[0] === 'admin' && session.admin) return ['admin', pageAdmin()];
  return null;
}

async function refreshNow() {
  const page = current;
  if (!page || !page.refresh) return;
  const focused = document.activeElement && document.activeElement.id;
  try {
    await page.refresh();
    page.error && put(page.error);
  } catch (e) {
    if (page !== current || e.name === 'AbortError') return;
    put(page.error, errorBox(e.status === 404 ? { message: 'Not found: no such app or migration is yours to see.' } : e));
  }
  if (page !== current) return;
  document.title = `${page.title} · regionmove`;
  if (focused && document.activeElement === document.body) {
    const again = document.getElementById(focused);
    if (again) again.focus();
  }
}

async function route() {
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  clearInterval(ticker);
  signedInChrome();
  let section = null;
  let page;
  if (!session.token) {
    page = pageSignIn();
  } else {
    const found = pageFor(location.hash);
    if (!found) {
      location.replace('#/apps');
      return;
    }
    [section, page] = found;
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current = page;
  stopStream(); // restarted below: the new page's wait() applies at once
  put(main);
  page.error = h('div', {});
  page.render(main);
  main.insertBefore(page.error, main.children[1] || null);
  document.title = `${page.title} · regionmove`;
  // The stream's position is read before the page's data, so nothing changing in between is
  // missed (when it cannot be read, the stream reads it and refreshes the page itself).
  let after = null;
  if (session.token) {
    after = await api('GET', '/v1/events').then((r) => r.next, () => null);
    if (page !== current) return;
  }
  await refreshNow();
  if (page !== current) return;
  if (session.token) startStream(after);
  const heading = main.querySelector('h1');
  if (heading && page.refresh && !document.querySelector('dialog[open]')) heading.focus();
  if (page.tick) ticker = setInterval(() => page.tick(), 1000);
}

function signedInChrome() {
  const signedIn = Boolean(session.token);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('nav-admin').hidden = !session.admin;
  document.getElementById('signout').hidden = !signedIn;
  document.getElementById('who').textContent = signedIn ? (session.admin ? 'Signed in as an admin' : 'Signed in') : '';
}

// The change stream: GET /v1/events long polls (parked by the server, no thread held). Every
// answer with events refreshes the page; while a migration moves, polls are short so its bytes
// and ETA stay live. On failure it polls the page every few seconds and tries again.
let stream = null;

function stopStream() {
  if (stream) stream.abort();
  stream = null;
}

// `from`: the position to follow from; null to read it (and refresh the page once read).
async function startStream(from) {
  stopStream();
  const controller = new AbortController();
  stream = controller;
  let after = from;
  let failures = 0;
  while (stream === controller) {
    try {
      if (after === null) {
        after = (await api('GET', '/v1/events', undefined, { signal: controller.signal })).next;
        // What changed before that position and after the page's first read is shown now.
        await refreshNow();
      }
      const wait = current && current.wait ? current.wait() : 25;
      const r = await api('GET', `/v1/events?after=${after}&wait=${wait}`, undefined, { signal: controller.signal });
      after = r.next;
      if (failures > 0) announce('Live updates resumed.');
      failures = 0;
      if (r.events.length > 0 || (current && current.wait && current.wait() < 25)) await refreshNow();
    } catch (e) {
      if (e.name === 'AbortError' || stream !== controller) return;
      failures++;
      if (failures === 1) announce('Live updates are interrupted; refreshing every 5 seconds.');
      await new Promise((resolve) => setTimeout(resolve, Math.min(30, 5 * failures) * 1000));
      if (stream !== controller) return;
      await refreshNow();
    }
  }
}

document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
document.getElementById('skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', route);
route();
