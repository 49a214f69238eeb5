// The client against a REAL `gatehouse serve` (issue 7's scenarios): expiry → refresh → retry;
// 20 concurrent requests on an expired token → one refresh; a reused refresh token →
// SignInRequired; 403 → no retry; step-up; 429 with Retry-After.
//
// Needs the binary: `cargo build -p gatehouse` (GATEHOUSE_BIN overrides target/debug/gatehouse).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ForbiddenError,
  GatehouseError,
  MemoryTokenStore,
  RequestNotReplayableError,
  SignInRequiredError,
  StepUpRequiredError,
  createClient,
} from '../index.js';

// dist/test/ → clients/js → repo root.
const GATEHOUSE = process.env.GATEHOUSE_BIN || fileURLToPath(new URL('../../../../target/debug/gatehouse', import.meta.url));
const PASSWORD = 'correct horse battery staple';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let dir;
let gate;
let upstream;
let baseUrl;
const upstreamHits = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

before(async () => {
  assert.ok(existsSync(GATEHOUSE), `${GATEHOUSE} is missing: run \`cargo build -p gatehouse\``);
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-js-'));
  upstream = createServer((req, res) => {
    upstreamHits.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, user: req.headers['x-gatehouse-user'] ?? null }));
    });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const config = join(dir, 'g.toml');
  // access_ttl 1s + leeway 1s: a token is refused as expired ~2-3 s after issue.
  writeFileSync(
    config,
    `[server]
listen = "127.0.0.1:${port}"

[upstream]
url = "http://127.0.0.1:${upstream.address().port}"

[store]
url = "sqlite://${join(dir, 'g.db')}"

[tokens]
access_ttl = "1s"
leeway = "1s"

[[route]]
name = "admin"
path = "/admin/**"
roles = ["admin"]

[[route]]
name = "mfa"
path = "/mfa/**"
mfa = true

[[route]]
name = "quota"
path = "/quota/**"
quota = { max = 1, per = "3s" }

[[route]]
name = "checkout"
path = "/checkout/**"
[[route.require]]
attribute = "email_verified"
present = true
code = "email_unverified"
message = "Verify your email address first."
remedy_url = "/account/email"
[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
message = "Add a payment method to check out."
remedy_url = "/account/billing"
[[route]]
name = "api"
path = "/api/**"
auth = ["bearer"]
`,
  );
  const add = spawnSync(GATEHOUSE, ['user', 'add', 'alice', '--password-stdin', '--config', config], {
    input: `${PASSWORD}\n`,
    encoding: 'utf8',
  });
  assert.equal(add.status, 0, `gatehouse user add failed:\n${add.stderr}`);
  gate = spawn(GATEHOUSE, ['serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  gate.stderr.on('data', (d) => {
    stderr += d;
  });
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${baseUrl}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (gate.exitCode !== null || i > 300) assert.fail(`gatehouse serve did not become healthy:\n${stderr}`);
    await sleep(100);
  }
});

after(async () => {
  gate?.kill('SIGTERM');
  upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) of a base32 secret at time step `step`. */
function totp(base32, step) {
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

/** Runs the gatehouse CLI against the test's config; its stdout. */
function cli(args, input) {
  const r = spawnSync(GATEHOUSE, [...args, '--config', join(dir, 'g.toml')], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, `gatehouse ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** A client whose `fetch` is counted: every request the server sees, by path. */
function counted(extra = {}) {
  const seen = [];
  const statuses = [];
  const tokens = new MemoryTokenStore();
  const calls = { signIn: 0, forbidden: [], stepUp: [] };
  const client = createClient({
    baseUrl,
    tokens,
    fetch: (input, init) => {
      const req = new Request(input, init);
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      const path = new URL(req.url).pathname;
      return fetch(req).then((res) => {
        statuses.push(`${path} ${res.status}`);
        return res;
      });
    },
    onSignInRequired: () => calls.signIn++,
    onForbidden: (p) => calls.forbidden.push(p),
    onStepUp: (c) => calls.stepUp.push(c),
    ...extra,
  });
  const count = (what) => seen.filter((s) => s === what).length;
  return { client, tokens, seen, statuses, calls, count };
}

test('expired token: one refresh, one retry, the upstream answers', async () => {
  const { client, tokens, seen } = counted();
  const first = await client.login('alice', PASSWORD);
  await sleep(3500);
  const hits = upstreamHits.length;
  const res = await client.fetch('/api/expiry');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, user: 'alice' });
  assert.deepEqual(seen, ['POST /auth/login', 'GET /api/expiry', 'POST /auth/refresh', 'GET /api/expiry']);
  assert.equal(upstreamHits.length - hits, 1);
  const now = tokens.get();
  assert.notEqual(now.accessToken, first.accessToken);
  assert.notEqual(now.refreshToken, first.refreshToken, 'the refresh token is rotated');
});

test('20 concurrent requests on an expired token cause exactly one refresh', async () => {
  const { client, count } = counted();
  await client.login('alice', PASSWORD);
  await sleep(3500);
  const hits = upstreamHits.length;
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => client.fetch(`/api/c${i}`)));
  assert.deepEqual(
    all.map((r) => r.status),
    Array(20).fill(200),
  );
  assert.equal(count('POST /auth/refresh'), 1);
  assert.equal(upstreamHits.length - hits, 20);
});

test('a reused refresh token ends the session: SignInRequired, store cleared', async () => {
  const { client, tokens, calls } = counted();
  const stolen = await client.login('alice', PASSWORD);
  // Someone else uses the refresh token first (rotation), then ours is a reuse.
  const r = await fetch(`${baseUrl}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: stolen.refreshToken }),
  });
  assert.equal(r.status, 200);
  const rotated = await r.json();
  tokens.set({ accessToken: 'not-a-jwt', refreshToken: stolen.refreshToken });
  await assert.rejects(client.fetch('/api/reuse'), (e) => {
    assert.ok(e instanceof SignInRequiredError);
    assert.equal(e.status, 401);
    assert.equal(e.problem.error, 'invalid_token');
    return true;
  });
  assert.equal(calls.signIn, 1);
  assert.equal(tokens.get(), null);
  // Theft detection revoked the whole family: the thief's rotated token is dead too.
  const again = await fetch(`${baseUrl}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: rotated.refresh_token }),
  });
  assert.equal(again.status, 401);
});

test('403 is never retried: the server sees one request, the upstream none', async () => {
  const { client, seen, calls } = counted();
  await client.login('alice', PASSWORD);
  const hits = upstreamHits.length;
  await assert.rejects(client.fetch('/admin/users'), (e) => {
    assert.ok(e instanceof ForbiddenError);
    assert.equal(e.problem.error, 'insufficient_role');
    assert.deepEqual(e.problem.required_roles, ['admin']);
    return true;
  });
  assert.deepEqual(seen, ['POST /auth/login', 'GET /admin/users']);
  assert.equal(upstreamHits.length, hits);
  assert.equal(calls.forbidden.length, 1);
  assert.equal(calls.forbidden[0].status, 403);
});

test('403 requirement_not_met: ForbiddenError exposes the requirements, one less after `user set`', async () => {
  const { client } = counted();
  await client.login('alice', PASSWORD);
  const codes = async () => {
    try {
      await client.fetch('/checkout/cart');
      return null;
    } catch (e) {
      assert.ok(e instanceof ForbiddenError);
      assert.equal(e.problem.error, 'requirement_not_met');
      return e.requirements;
    }
  };
  const first = await codes();
  assert.deepEqual(first, [
    { code: 'email_unverified', message: 'Verify your email address first.', remedy_url: '/account/email' },
    { code: 'payment_method_required', message: 'Add a payment method to check out.', remedy_url: '/account/billing' },
  ]);
  const set = spawnSync(GATEHOUSE, ['user', 'set', 'alice', 'email_verified=true', '--config', join(dir, 'g.toml')], {
    encoding: 'utf8',
  });
  assert.equal(set.status, 0, set.stderr);
  // The running gateway re-reads attributes every second.
  let now;
  for (let i = 0; i < 50; i++) {
    now = await codes();
    if (now && now.length === 1) break;
    await sleep(100);
  }
  assert.deepEqual(now.map((r) => r.code), ['payment_method_required']);
  // Any other 403 has none.
  await assert.rejects(client.fetch('/admin/users'), (e) => e instanceof ForbiddenError && e.requirements.length === 0);
});

test('step-up: onStepUp with acr_values and StepUpRequiredError, no refresh', async () => {
  const { client, seen, calls } = counted();
  await client.login('alice', PASSWORD);
  const hits = upstreamHits.length;
  await assert.rejects(client.fetch('/mfa/settings'), (e) => {
    assert.ok(e instanceof StepUpRequiredError);
    assert.equal(e.status, 401);
    assert.deepEqual(e.challenge.acrValues, ['mfa']);
    assert.equal(e.problem.error, 'insufficient_user_authentication');
    return true;
  });
  assert.equal(calls.stepUp.length, 1);
  assert.deepEqual(calls.stepUp[0].acrValues, ['mfa']);
  assert.deepEqual(seen, ['POST /auth/login', 'GET /mfa/settings']);
  assert.equal(upstreamHits.length, hits);
});

test('429: Retry-After above the cap is returned; within the cap it is waited out once', async () => {
  const impatient = counted({ maxRetryAfterSeconds: 0 });
  await impatient.client.login('alice', PASSWORD);
  // Quota is per subject: the two clients share alice's window.
  const ok = await impatient.client.fetch('/quota/a');
  assert.equal(ok.status, 200);
  const limited = await impatient.client.fetch('/quota/a');
  assert.equal(limited.status, 429);
  const wait = Number(limited.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 3, `Retry-After ${wait}`);
  assert.equal((await limited.json()).error, 'rate_limited');
  assert.equal(impatient.count('GET /quota/a'), 2, 'not retried above the cap');

  const patient = counted({ maxRetryAfterSeconds: 5 });
  patient.tokens.set(impatient.tokens.get());
  const started = Date.now();
  const res = await patient.client.fetch('/quota/b');
  assert.equal(res.status, 200);
  // One wait; the 1 s access token may expire during it, which costs one refresh and retry.
  const answers = patient.statuses.filter((s) => s.startsWith('/quota/b'));
  assert.ok(
    ['/quota/b 429,/quota/b 200', '/quota/b 429,/quota/b 401,/quota/b 200'].includes(answers.join()),
    answers.join(),
  );
  assert.ok(Date.now() - started >= 900, 'waited for Retry-After');
});

test('a stream body is not replayed after a refresh: the caller is told', async () => {
  const { client, seen } = counted();
  await client.login('alice', PASSWORD);
  await sleep(3500);
  const hits = upstreamHits.length;
  const body = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"a":1}'));
      c.close();
    },
  });
  await assert.rejects(
    client.fetch('/api/upload', { method: 'POST', body, duplex: 'half' }),
    (e) => e instanceof RequestNotReplayableError && e.status === 401,
  );
  assert.deepEqual(seen, ['POST /auth/login', 'POST /api/upload', 'POST /auth/refresh']);
  assert.equal(upstreamHits.length, hits);
  // The refreshed token works for the resend.
  const res = await client.fetch('/api/upload', { method: 'POST', body: '{"a":1}' });
  assert.equal(res.status, 200);
});

test('MFA: login refuses with mfa_required and an mfa_token; completeMfa signs in with acr mfa', async () => {
  cli(['user', 'add', 'carol', '--password-stdin'], `${PASSWORD}\n`);
  const secret = /secret: ([A-Z2-7]+)/.exec(cli(['user', 'mfa', 'enroll', 'carol']))?.[1];
  assert.ok(secret, 'enroll prints the base32 secret');
  const { client, tokens, seen } = counted();
  const refused = await client.login('carol', PASSWORD).catch((e) => e);
  assert.ok(refused instanceof GatehouseError, String(refused));
  assert.equal(refused.status, 401);
  assert.equal(refused.problem.error, 'mfa_required');
  assert.equal(typeof refused.problem.mfa_token, 'string');
  assert.equal(tokens.get(), null, 'no tokens before the second factor');

  // A wrong code is refused; the same mfa_token then takes the right one.
  const wrong = await client.completeMfa(refused.problem.mfa_token, '000000').catch((e) => e);
  assert.ok(wrong instanceof GatehouseError, String(wrong));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.problem.error, 'invalid_credentials');
  const step = Math.floor(Date.now() / 1000 / 30);
  const code = [step, step - 1, step + 1].map((s) => totp(secret, s)).find((c) => c !== '000000');
  const pair = await client.completeMfa(refused.problem.mfa_token, code);
  assert.deepEqual(tokens.get(), pair);
  const claims = JSON.parse(Buffer.from(pair.accessToken.split('.')[1], 'base64url').toString());
  assert.equal(claims.acr, 'mfa');
  assert.deepEqual(seen, ['POST /auth/login', 'POST /auth/mfa', 'POST /auth/mfa']);
  // The route that made alice step up lets carol through (the 1 s token may need a refresh
  // on a slow machine; the refreshed token keeps its `acr`).
  const res = await client.fetch('/mfa/settings');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, user: 'carol' });
});
