// Sign-in through a real OpenID provider (the certified `oidc-provider` package on loopback,
// see provider.mjs) in real headless Chromium, against `gatehouse serve`: land on the asked
// page, provisioned vs existing-only users, the 403 page for a user outside the allowed
// domain, step-up at the provider, RP-initiated logout, back-channel logout reaching a second
// node within a second, tampered and replayed callbacks (400), the provider down (503).
// Leaves a screenshot of the sign-in page with provider buttons in docs/img/.
//
// Run: cargo build -p gatehouse && npm ci --prefix tests/oidc && node --test tests/oidc/
// Env: GATEHOUSE_BIN, CHROMIUM as tests/browser; GATEHOUSE_TEST_STORE=postgres with
// GATEHOUSE_TEST_POSTGRES_URL runs the gateways on PostgreSQL; the two-node back-channel test
// needs PostgreSQL and GATEHOUSE_TEST_REDIS_URL (skipped without them unless required).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as playwright from 'playwright-core';
import { GATEHOUSE, IMG, haveChromium, launchChromium, requireChromium } from '../browser/support.mjs';
import { startProvider } from './provider.mjs';

requireChromium();

const SECRET = 'test-client-secret-0123456789';
const RUN = randomBytes(4).toString('hex');
const PG = process.env.GATEHOUSE_TEST_STORE === 'postgres' ? process.env.GATEHOUSE_TEST_POSTGRES_URL : undefined;
const REDIS = process.env.GATEHOUSE_TEST_REDIS_URL;
const required = (k) =>
  (process.env.GATEHOUSE_TEST_REQUIRE ?? '').split(',').some((v) => ['all', k].includes(v.trim().toLowerCase()));
const clusterPg = PG ?? (REDIS ? process.env.GATEHOUSE_TEST_POSTGRES_URL : undefined);
const twoNodes = Boolean(clusterPg && REDIS);
if (!twoNodes && (required('redis') || required('postgres'))) {
  test('postgres and redis for the two-node test', () => {
    assert.fail('GATEHOUSE_TEST_POSTGRES_URL and GATEHOUSE_TEST_REDIS_URL are needed for back-channel logout across nodes');
  });
}

/** A free loopback port. */
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** The app behind the gateway: says who came, with a sign-out button. */
async function startUpstream() {
  const s = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(
      `<!doctype html><h1>Hello, ${req.headers['x-gatehouse-user']}</h1><p id="path">${req.url}</p>` +
        '<form method="post" action="/auth/logout"><button type="submit">Sign out</button></form>',
    );
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  return { port: s.address().port, stop: () => new Promise((r) => s.close(r)) };
}

function config({ port, upstream, issuer, store, redis }) {
  return `
[server]
listen = "127.0.0.1:${port}"
realm = "oidc-test"
[upstream]
url = "http://127.0.0.1:${upstream}"
[store]
url = "${store}"
${redis ? `[cluster]\nredis_url = "${redis}"\nkey_prefix = "gh-oidc-${RUN}"` : ''}
[defaults]
access = "authenticated"
auth = ["session", "bearer"]
[[route]]
name = "billing"
path = "/billing/**"
auth = ["session", "bearer"]
mfa = true
[[login_providers]]
name = "corp"
display_name = "Corp SSO"
issuer = "${issuer}"
client_id = "gatehouse"
client_secret = "\${GATEHOUSE_OIDC_TEST_SECRET}"
scopes = ["openid", "email", "profile", "groups"]
users = "provision"
allowed_domains = ["example.com"]
[[login_providers]]
name = "partners"
display_name = "Partner SSO"
issuer = "${issuer}"
client_id = "gatehouse-partners"
client_secret_file = "${dir}/partners-secret"
users = "existing"
`;
}

/** Starts `gatehouse serve` with `text`; resolves once it answers `/healthz`. */
async function startGateway(name, text, port) {
  assert.ok(existsSync(GATEHOUSE), `${GATEHOUSE} is missing: run \`cargo build -p gatehouse\``);
  const file = join(dir, `${name}.toml`);
  writeFileSync(file, text);
  const proc = spawn(GATEHOUSE, ['serve', '--config', file, '--log', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, GATEHOUSE_OIDC_TEST_SECRET: SECRET },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`gatehouse serve exited:\n${stderr}`);
    const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (ok) return { proc, base, stderr: () => stderr };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gatehouse serve did not start:\n${stderr}`);
}

let dir;
let op;
let upstream;
let a;
let b;
let browser;

before(async () => {
  if (!haveChromium) return;
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-oidc-'));
  writeFileSync(join(dir, 'partners-secret'), `${SECRET}-partners\n`);
  upstream = await startUpstream();
  const [pa, pb] = [await freePort(), await freePort()];
  const ga = `http://127.0.0.1:${pa}`;
  const gb = `http://127.0.0.1:${pb}`;
  op = await startProvider([
    {
      client_id: 'gatehouse',
      client_secret: SECRET,
      redirect_uris: [`${ga}/auth/oidc/corp/callback`],
      post_logout_redirect_uris: [`${ga}/`],
      // Logout tokens go to the second node: the first must hear of it from there.
      backchannel_logout_uri: `${twoNodes ? gb : ga}/auth/oidc/corp/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'gatehouse-partners',
      client_secret: `${SECRET}-partners`,
      redirect_uris: [`${ga}/auth/oidc/partners/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ]);
  const store = twoNodes ? clusterPg : PG ?? `sqlite://${join(dir, 'gatehouse.db')}`;
  const redis = twoNodes ? REDIS : undefined;
  a = await startGateway('a', config({ port: pa, upstream: upstream.port, issuer: op.issuer, store, redis }), pa);
  if (twoNodes) {
    b = await startGateway('b', config({ port: pb, upstream: upstream.port, issuer: op.issuer, store, redis }), pb);
  }
  browser = await launchChromium(playwright);
});

after(async () => {
  await browser?.close();
  a?.proc.kill('SIGTERM');
  b?.proc.kill('SIGTERM');
  await op?.stop();
  await upstream?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  return { context, page: await context.newPage() };
}

/** At the provider's login page: signs in as `email` (with a second factor when `otp`). */
async function providerLogin(page, email, otp = '') {
  await page.waitForURL(`${op.issuer}/interaction/**`);
  await page.fill('#login', email);
  await page.fill('#password', 'any');
  if (otp) await page.fill('#otp', otp);
  await page.click('button[type="submit"]');
}

/**
 * Signs in at the provider's login page (shown in `page`) as `email` outside the browser's
 * navigation, in the same cookie jar, and returns the provider's answer for the gateway (the
 * callback URL) without following it.
 */
async function answerOf(page, email) {
  await page.waitForURL(`${op.issuer}/interaction/**`);
  const action = new URL(await page.locator('form').getAttribute('action'), op.issuer).href;
  const api = page.context().request;
  let r = await api.post(action, { form: { login: email, password: 'any' }, maxRedirects: 0 });
  let to = new URL(r.headers().location, op.issuer).href;
  while (!to.startsWith(a.base)) {
    r = await api.get(to, { maxRedirects: 0 });
    to = new URL(r.headers().location, op.issuer).href;
  }
  return to;
}

const user = (name) => `${name}.${RUN}@example.com`;

test('sign in through the provider and land on the asked page; provisioned, then existing-only', { skip: !haveChromium }, async () => {
  const { context, page } = await newPage();
  try {
    const resp = await page.goto(`${a.base}/app/reports?q=1`);
    assert.equal(resp.status(), 401);
    const corp = page.locator('a.provider', { hasText: 'Sign in with Corp SSO' });
    assert.equal(await corp.getAttribute('href'), '/auth/oidc/corp/start?return_to=%2Fapp%2Freports%3Fq%3D1');
    assert.equal(await page.locator('a.provider', { hasText: 'Sign in with Partner SSO' }).count(), 1);
    assert.equal(await page.locator('form[action="/auth/login"]').count(), 1, 'local passwords are enabled');
    mkdirSync(IMG, { recursive: true });
    await page.screenshot({ path: `${IMG}sign-in-providers.png` });
    await corp.click();
    await providerLogin(page, user('jane'));
    await page.waitForURL(`${a.base}/app/reports?q=1`);
    assert.equal(await page.locator('h1').textContent(), `Hello, ${user('jane')}`);
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'gatehouse_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal((await context.cookies()).filter((c) => c.name === 'gatehouse_oidc').length, 0, 'flow cookie cleared');
  } finally {
    await context.close();
  }
  // `partners` admits only existing users: jane now exists, mallory does not.
  for (const [who, status] of [[user('jane'), 200], [user('mallory'), 403]]) {
    const { context: c, page: p } = await newPage();
    try {
      await p.goto(`${a.base}/auth/oidc/partners/start?return_to=%2Fapp%2Fhome`);
      const [resp] = await Promise.all([
        p.waitForResponse((r) => r.url().startsWith(`${a.base}/auth/oidc/partners/callback`)),
        providerLogin(p, who),
      ]);
      if (status === 200) {
        await p.waitForURL(`${a.base}/app/home`);
        assert.equal(await p.locator('h1').textContent(), `Hello, ${who}`);
      } else {
        assert.equal(resp.status(), 403);
        assert.equal(await p.locator('h1').textContent(), 'Sign-in refused');
        assert.match(await p.locator('main').textContent(), /no account/);
        assert.ok(p.url().startsWith(`${a.base}/auth/oidc/partners/callback`), 'no loop back to the provider');
      }
    } finally {
      await c.close();
    }
  }
});

test('a user outside the allowed domain gets the 403 page', { skip: !haveChromium }, async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(`${a.base}/auth/oidc/corp/start?return_to=%2Fapp%2Fhome`);
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().startsWith(`${a.base}/auth/oidc/corp/callback`)),
      providerLogin(page, `eve.${RUN}@elsewhere.org`),
    ]);
    assert.equal(resp.status(), 403);
    assert.match(await page.locator('main').textContent(), /elsewhere\.org/);
    assert.match(await page.locator('.code').textContent(), /access_denied/);
    await page.screenshot({ path: `${IMG}sign-in-refused.png` });
  } finally {
    await context.close();
  }
});

test('step-up: the browser goes back with acr_values and the route then admits it', { skip: !haveChromium }, async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(`${a.base}/auth/oidc/corp/start?return_to=%2Fapp%2Fhome`);
    await providerLogin(page, user('sam'));
    await page.waitForURL(`${a.base}/app/home`);
    // No second factor yet: /billing sends the browser to the provider asking for MFA.
    await page.goto(`${a.base}/billing/invoices`);
    await page.waitForURL(`${op.issuer}/interaction/**`);
    assert.match(await page.locator('#asked').textContent(), /acr_values=mfa; prompt=login/);
    await providerLogin(page, user('sam'), '123456');
    await page.waitForURL(`${a.base}/billing/invoices`);
    assert.equal(await page.locator('h1').textContent(), `Hello, ${user('sam')}`);
    // An API client with the same session gets the contract's 401, not a redirect.
    const cookie = (await context.cookies()).find((c) => c.name === 'gatehouse_session');
    const api = await fetch(`${a.base}/billing/invoices`, { headers: { cookie: `gatehouse_session=${cookie.value}` }, redirect: 'manual' });
    assert.equal(api.status, 200, 'the stepped-up session passes');
  } finally {
    await context.close();
  }
});

test('RP-initiated logout ends at the provider and comes back', { skip: !haveChromium }, async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(`${a.base}/auth/oidc/corp/start?return_to=%2Fapp%2Fhome`);
    await providerLogin(page, user('rita'));
    await page.waitForURL(`${a.base}/app/home`);
    const cookie = (await context.cookies()).find((c) => c.name === 'gatehouse_session');
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${op.issuer}/session/end**`);
    await page.click('button[autofocus], button:has-text("Yes")');
    await page.waitForURL(`${a.base}/`);
    const after = await fetch(`${a.base}/app/home`, { headers: { cookie: `gatehouse_session=${cookie.value}` } });
    assert.equal(after.status, 401);
  } finally {
    await context.close();
  }
});

test('back-channel logout revokes the session on a second node within a second', { skip: !haveChromium || !twoNodes }, async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(`${a.base}/auth/oidc/corp/start?return_to=%2Fapp%2Fhome`);
    await providerLogin(page, user('bo'));
    await page.waitForURL(`${a.base}/app/home`);
    const cookie = (await context.cookies()).find((c) => c.name === 'gatehouse_session');
    const get = () => fetch(`${a.base}/app/home`, { headers: { cookie: `gatehouse_session=${cookie.value}` } });
    assert.equal((await get()).status, 200);
    // The user signs out at the provider itself; its logout token goes to node B.
    await page.goto(`${op.issuer}/session/end`);
    await page.click('button[autofocus], button:has-text("Yes")');
    const deadline = Date.now() + 1000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await get()).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 401, 'node A refuses the session within 1 s of the logout');
  } finally {
    await context.close();
  }
});

test('a tampered or replayed callback is 400; the provider down is 503', { skip: !haveChromium }, async () => {
  // Each case in a fresh browser, so the provider asks for a login each time.
  const fresh = async (run) => {
    const { context, page } = await newPage();
    try {
      await run(page);
    } finally {
      await context.close();
    }
  };
  await fresh(async (page) => {
    await page.goto(`${a.base}/auth/oidc/corp/start`);
    const answer = await answerOf(page, user('tom'));
    const resp = await page.goto(answer.replace('state=', 'state=x'));
    assert.equal(resp.status(), 400);
    assert.match(await page.locator('.code').textContent(), /invalid_request/);
  });
  await fresh(async (page) => {
    await page.goto(`${a.base}/auth/oidc/corp/start?return_to=%2Fapp%2Fhome`);
    const answer = await answerOf(page, user('tom'));
    assert.equal((await page.goto(answer)).status(), 200, 'the first answer signs in');
    assert.equal(page.url(), `${a.base}/app/home`);
    const again = await page.goto(answer);
    assert.equal(again.status(), 400, 'the replayed answer is refused');
    assert.match(await page.locator('main').textContent(), /no sign-in is in progress|already used/);
  });
  await fresh(async (page) => {
    await page.goto(`${a.base}/auth/oidc/corp/start`);
    const answer = await answerOf(page, user('tom'));
    await op.stop();
    const resp = await page.goto(answer);
    assert.equal(resp.status(), 503);
    assert.ok(resp.headers()['retry-after']);
    assert.match(await page.locator('.code').textContent(), /auth_unavailable/);
  });
});
