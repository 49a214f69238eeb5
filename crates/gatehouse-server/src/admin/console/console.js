// The Gatehouse console: plain JavaScript over the admin API (same origin, the session
// cookie; unsafe methods carry the browser's own Origin, which the CSRF check wants).
'use strict';

const $ = (sel) => document.querySelector(sel);
const STATUSES = [401, 403, 404, 429];
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function say(text) {
  $('#status').textContent = text;
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    const why = (json && (json.detail || json.error)) || res.statusText;
    if (res.status === 401) location.reload();
    throw new Error(`${res.status}: ${why}`);
  }
  return json;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function row(cells, actions = []) {
  const tr = el('tr');
  for (const c of cells) tr.append(el('td', { text: c == null ? '–' : String(c) }));
  if (actions.length) {
    const td = el('td');
    for (const a of actions) td.append(a);
    tr.append(td);
  }
  return tr;
}

/** A button that asks for confirmation before `run`, then says what happened. */
function action(label, question, run, after) {
  return el('button', {
    type: 'button',
    text: label,
    onclick: async () => {
      if (!window.confirm(question)) return;
      try {
        await run();
        say(`Done: ${question.replace(/\?$/, '')}.`);
        if (after) await after();
      } catch (e) {
        say(`Failed: ${e.message}`);
      }
    },
  });
}

// One colour per reason for the whole page, in the order reasons first appear.
const colours = new Map();
function colour(reason) {
  if (!colours.has(reason)) colours.set(reason, PALETTE[colours.size % PALETTE.length]);
  return colours.get(reason);
}

function time(iso) {
  return iso ? iso.replace('T', ' ').replace('Z', '') : '–';
}

// --- tabs ------------------------------------------------------------------------------

const loaders = {};

function select(id) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.getAttribute('aria-controls') === id;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute('aria-controls')).hidden = !on;
  }
  history.replaceState(null, '', `#${id}`);
  if (loaders[id]) loaders[id]().catch((e) => say(`Failed: ${e.message}`));
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab.getAttribute('aria-controls')));
    // WAI-ARIA tabs: arrow keys move between tabs.
    tab.addEventListener('keydown', (ev) => {
      const next = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!next) return;
      const t = tabs[(i + next + tabs.length) % tabs.length];
      t.focus();
      select(t.getAttribute('aria-controls'));
    });
  });
}

// --- overview --------------------------------------------------------------------------

function chart(status, buckets, since, until, step) {
  const width = 720;
  const height = 140;
  const n = Math.max(1, Math.round((Date.parse(until) - Date.parse(since)) / 1000 / step));
  const stacks = new Map();
  let max = 1;
  for (const b of buckets) {
    const parts = b.counts.filter((c) => c.status === status);
    const total = parts.reduce((s, c) => s + c.count, 0);
    if (total) stacks.set(b.time, parts);
    max = Math.max(max, total);
  }
  const reasons = new Set();
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  let total = 0;
  const bw = width / n;
  for (const [t, parts] of stacks) {
    const x = ((Date.parse(t) - Date.parse(since)) / 1000 / step) * bw;
    let y = height;
    for (const p of parts) {
      reasons.add(p.reason);
      total += p.count;
      const h = (p.count / max) * (height - 10);
      y -= h;
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', x.toFixed(1));
      r.setAttribute('y', y.toFixed(1));
      r.setAttribute('width', Math.max(1, bw - 1).toFixed(1));
      r.setAttribute('height', h.toFixed(1));
      r.setAttribute('fill', colour(p.reason));
      r.setAttribute('class', 'bar');
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${time(t)}: ${p.count} × ${status} ${p.reason}`;
      r.append(title);
      svg.append(r);
    }
  }
  svg.setAttribute('aria-label', `${total} answers with status ${status}, by reason, peak ${max} per ${step / 60} min`);
  const legend = el('ul', { class: 'legend' });
  for (const r of reasons) {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = colour(r);
    legend.append(el('li', {}, sw, ` ${r}`));
  }
  return el('figure', { class: 'chart', 'data-status': String(status), 'data-total': String(total) },
    el('figcaption', { text: `${status} — ${total} in range` }), svg, legend);
}

function fillTop(id, items, key) {
  const ol = $(id);
  ol.replaceChildren(...(items.length ? items.map((i) => el('li', { text: `${i[key]} (${i.count})` })) : [el('li', { text: 'none' })]));
}

async function overview() {
  const form = $('#overview-form');
  const q = new URLSearchParams({ range: form.range.value });
  if (form.route.value) q.set('route', form.route.value);
  const [stats, top, alerts] = await Promise.all([
    api('GET', `/admin/api/stats?${q}`),
    api('GET', `/admin/api/stats/top?${q}`),
    api('GET', '/admin/api/alerts?limit=1'),
  ]);
  $('#charts').replaceChildren(...STATUSES.map((s) => chart(s, stats.buckets, stats.since, stats.until, stats.step)));
  fillTop('#top-routes', top.routes, 'route');
  fillTop('#top-users', top.users, 'user');
  fillTop('#top-addresses', top.addresses, 'address');
  const box = $('#alert');
  const a = alerts.items[0];
  box.hidden = !a;
  if (a) box.textContent = `Latest alert (${time(a.time)}): ${a.detail}${a.acknowledged ? ` — acknowledged by ${a.acknowledged.by}` : ''}`;
}

async function routeChoices() {
  const cfg = await api('GET', '/admin/api/config');
  const sel = $('#overview-form').route;
  for (const r of cfg.config.routes) sel.append(el('option', { value: r.name, text: r.name }));
}

// --- live ------------------------------------------------------------------------------

let source = null;

function live() {
  if (source) return Promise.resolve();
  source = new EventSource('/admin/api/live');
  source.addEventListener('refusal', (ev) => {
    const r = JSON.parse(ev.data);
    const rows = $('#live-rows');
    rows.prepend(row([time(r.time), r.status, r.error, r.route, `${r.method} ${r.path}`, r.principal, r.client_ip]));
    while (rows.children.length > 200) rows.lastChild.remove();
  });
  return Promise.resolve();
}

// --- audit -----------------------------------------------------------------------------

let cursor = null;

function auditQuery() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($('#audit-form'))) if (v) q.set(k, v);
  return q;
}

async function why(rec) {
  const box = $('#why');
  const dl = $('#why-record');
  dl.replaceChildren();
  for (const k of ['time', 'request_id', 'status', 'error', 'hidden', 'route', 'method', 'path', 'principal', 'scheme', 'client_ip', 'detail']) {
    dl.append(el('dt', { text: k }), el('dd', { text: rec[k] == null ? '–' : String(rec[k]) }));
  }
  const ex = await api('POST', '/admin/api/explain', {
    method: rec.method,
    path: rec.path,
    client_ip: rec.client_ip || undefined,
  });
  $('#why-summary').textContent = `${rec.method} ${rec.path} from ${rec.client_ip || '?'} without credentials: ${ex.decision}${ex.error ? ` ${ex.status} ${ex.error} (row ${ex.row})` : ''} on route ${ex.route}. The record above keeps what the request presented (its credentials are never stored).`;
  $('#why-steps').replaceChildren(...ex.steps.map((s) => el('li', { text: `${s.step}: ${s.note}` })));
  box.hidden = false;
  box.focus();
}

async function audit(more = false) {
  const q = auditQuery();
  for (const a of ['#export-jsonl', '#export-csv']) {
    const link = $(a);
    const u = new URL(link.href);
    const keep = u.searchParams.get('format');
    u.search = q.toString();
    if (keep) u.searchParams.set('format', keep);
    link.href = u.toString();
  }
  if (more && cursor) q.set('before', cursor);
  q.set('limit', '50');
  const page = await api('GET', `/admin/api/audit?${q}`);
  const rows = $('#audit-rows');
  if (!more) rows.replaceChildren();
  for (const r of page.items) {
    const id = el('button', { type: 'button', class: 'link', text: r.request_id, onclick: () => why(r).catch((e) => say(`Failed: ${e.message}`)) });
    const tr = row([time(r.time), r.status, r.error, r.route, `${r.method} ${r.path}`, r.principal, r.client_ip]);
    tr.append(el('td', {}, id));
    rows.append(tr);
  }
  cursor = page.next;
  $('#audit-more').hidden = !cursor;
  say(`${rows.children.length} audit record(s) shown.`);
}

// --- users, keys, sessions, locks -----------------------------------------------------------

async function users() {
  const q = new URLSearchParams(new FormData($('#user-filter')));
  const page = await api('GET', `/admin/api/users?${q}`);
  const name = (u) => encodeURIComponent(u.name);
  $('#user-rows').replaceChildren(...page.items.map((u) => row(
    [u.name, u.roles.join(', '), u.tenant, u.status === 'suspended' ? `suspended: ${u.suspend_reason}` : 'active', u.mfa ? 'yes' : 'no'],
    [
      u.status === 'suspended'
        ? action('Unsuspend', `Unsuspend ${u.name}?`, () => api('POST', `/admin/api/users/${name(u)}/unsuspend`), users)
        : action('Suspend', `Suspend ${u.name}?`, () => {
          const reason = window.prompt(`Why is ${u.name} suspended?`, 'Suspended by an administrator');
          if (!reason) throw new Error('a reason is needed');
          return api('POST', `/admin/api/users/${name(u)}/suspend`, { reason });
        }, users),
      action('Sign out everywhere', `Sign ${u.name} out everywhere?`, () => api('POST', `/admin/api/users/${name(u)}/sign-out`), users),
      action('Reset MFA', `Reset the MFA of ${u.name}?`, () => api('POST', `/admin/api/users/${name(u)}/reset-mfa`), users),
    ],
  )));
}

async function keys() {
  const page = await api('GET', '/admin/api/keys');
  $('#key-rows').replaceChildren(...page.items.map((k) => row(
    [k.id, k.user, k.scopes.join(' '), k.label, k.state, time(k.last_used_at)],
    k.state === 'active' ? [action('Revoke', `Revoke the key ${k.id} of ${k.user}?`, () => api('DELETE', `/admin/api/keys/${encodeURIComponent(k.id)}`), keys)] : [el('span', { text: '–' })],
  )));
}

async function sessions() {
  const page = await api('GET', '/admin/api/sessions');
  $('#session-rows').replaceChildren(...page.items.map((s) => row(
    [s.id, s.user, s.acr, time(s.created_at), time(s.expires_at)],
    [action('Revoke', `Revoke the session ${s.id} of ${s.user}?`, () => api('DELETE', `/admin/api/sessions/${encodeURIComponent(s.id)}`), sessions)],
  )));
}

async function locks() {
  const page = await api('GET', '/admin/api/locks');
  $('#lock-rows').replaceChildren(...page.items.map((l) => row(
    [l.kind, l.id, time(l.until)],
    [action('Unlock', `Unlock ${l.kind} ${l.id}?`, () => api('DELETE', `/admin/api/locks/${l.kind}/${encodeURIComponent(l.id)}`), locks)],
  )));
}

Object.assign(loaders, { overview, live, audit: () => audit(false), users, keys, sessions, locks });

document.addEventListener('DOMContentLoaded', async () => {
  setupTabs();
  const submit = (id, run) => $(id).addEventListener('submit', (ev) => {
    ev.preventDefault();
    run().catch((e) => say(`Failed: ${e.message}`));
  });
  submit('#overview-form', overview);
  submit('#audit-form', () => audit(false));
  submit('#user-filter', users);
  submit('#revoke-form', async () => {
    const form = $('#revoke-form');
    if (!window.confirm('Revoke this key?')) return;
    const k = await api('POST', '/admin/api/keys/revoke', { key: form.key.value });
    form.key.value = '';
    say(`Revoked ${k.id} of ${k.user}.`);
    await keys();
  });
  $('#audit-more').addEventListener('click', () => audit(true).catch((e) => say(`Failed: ${e.message}`)));
  try {
    const me = await api('GET', '/admin/api/me');
    $('#who').textContent = `Signed in as ${me.subject} (${me.scheme})`;
    await routeChoices();
  } catch (e) {
    say(`Failed: ${e.message}`);
  }
  const start = location.hash.slice(1);
  select(document.getElementById(start) ? start : 'overview');
});
