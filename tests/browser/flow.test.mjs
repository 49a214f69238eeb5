// The browser flow in real headless Chromium (Debian's `chromium`, driven by playwright-core,
// which downloads no browser): sign in, reach the page, be refused a page with 403 and no
// redirect loop, sign out — against `gatehouse demo`. Leaves screenshots of the sign-in page
// and of the 403 page in docs/img/.
//
// Run: cargo build -p gatehouse && npm ci --prefix tests/browser && node --test tests/browser/
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM (default /usr/bin/chromium).
// Without Chromium the test says so and is skipped, except under GATEHOUSE_TEST_REQUIRE=all
// (set by .ci/run) or CI, where it fails.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { GATEHOUSE, IMG, haveChromium, launchChromium, requireChromium } from './support.mjs';

requireChromium();

/** Starts `gatehouse demo` on free ports; resolves with the process and the gateway URL. */
function startDemo() {
  assert.ok(existsSync(GATEHOUSE), `${GATEHOUSE} is missing: run \`cargo build -p gatehouse\``);
  const proc = spawn(GATEHOUSE, ['demo', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse demo did not start:\n${stderr}`)), 30_000);
    proc.on('exit', (code) => reject(new Error(`gatehouse demo exited (${code}):\n${stderr}`)));
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      // `gatehouse demo: gateway on http://ADDR, demo upstream on http://ADDR`
      const m = /gateway on (http:\/\/[^,\s]+), demo upstream on (http:\/\/\S+)/.exec(line);
      if (!m) return reject(new Error(`unexpected first line: ${line}`));
      // The tour follows; it names dave's TOTP secret.
      lines.on('line', (l) => {
        const t = /dave \/ dave-password \(MFA, TOTP secret ([A-Z2-7]+)\)/.exec(l);
        if (t) resolve({ proc, gateway: m[1], upstream: m[2], daveTotp: t[1] });
      });
    });
  });
}

/** RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) of a base32 secret at time step `step`. */
function totp(base32, step) {
  let bits = '';
  for (const c of base32) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

let demo;
let browser;

before(async () => {
  if (!haveChromium) return;
  demo = await startDemo();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  demo?.proc.kill('SIGTERM');
});

/** A fresh browser context (its own cookie jar) with a page at a fixed size for screenshots. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  return { context, page: await context.newPage() };
}

test('sign in, reach the page, get a 403 without a redirect, sign out', { skip: !haveChromium }, async () => {
  const base = demo.gateway;
  const { context, page } = await newPage();
  try {
    // 1. Not signed in: the page answers 401 with a sign-in form that returns here.
    let resp = await page.goto(`${base}/app/home`);
    assert.equal(resp.status(), 401);
    assert.equal(page.url(), `${base}/app/home`);
    assert.equal(await page.locator('h1').textContent(), 'Authentication required');
    assert.equal(await page.locator('form[action="/auth/login"] input[name="return_to"]').inputValue(), '/app/home');
    mkdirSync(IMG, { recursive: true });
    await page.screenshot({ path: `${IMG}sign-in.png` });

    // 2. A wrong password: the sign-in page again (401), still returning to the same page.
    await page.fill('#username', 'bob');
    await page.fill('#password', 'not-bobs-password');
    [resp] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    assert.equal(resp.status(), 401);
    assert.equal(await page.locator('h1').textContent(), 'Invalid credentials');
    assert.equal(await page.locator('input[name="return_to"]').inputValue(), '/app/home');

    // 3. Bob signs in: the browser's own form POST passes the CSRF check (303), a cookie is
    //    set (HttpOnly, SameSite=Lax) and the browser lands on the page it asked for.
    await page.fill('#username', 'bob');
    await page.fill('#password', 'bob-password');
    const [login] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/auth/login`),
      page.click('button[type="submit"]'),
    ]);
    assert.equal(login.status(), 303, await login.text().catch(() => ''));
    const sent = await login.request().allHeaders();
    assert.ok(sent['sec-fetch-site'] === 'same-origin' || sent.origin === base, JSON.stringify(sent));
    await page.waitForURL(`${base}/app/home`);
    assert.match(await page.locator('h1').textContent(), /^Hello, bob$/);
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'gatehouse_session');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');

    // 4. Bob is not an admin: 403 in place — no redirect to sign-in (that would loop).
    const redirects = [];
    page.on('request', (r) => {
      if (r.redirectedFrom()) redirects.push(r.url());
    });
    resp = await page.goto(`${base}/app/admin/settings`);
    assert.equal(resp.status(), 403);
    assert.equal(resp.request().redirectedFrom(), null);
    assert.deepEqual(redirects, []);
    assert.equal(page.url(), `${base}/app/admin/settings`);
    assert.equal(await page.locator('h1').textContent(), 'Forbidden');
    assert.equal(await page.locator('li code').textContent(), 'admin');
    assert.match(await page.locator('main').textContent(), /One of these roles: admin/);
    assert.equal(await page.locator('form[action="/auth/login"]').count(), 0, 'no sign-in form on a 403');
    await page.screenshot({ path: `${IMG}forbidden.png` });

    // 5. Sign out from the 403 page: back at `/`, the cookie is gone, the page asks again.
    await Promise.all([page.waitForURL(`${base}/`), page.click('button:has-text("Sign out")')]);
    assert.deepEqual((await context.cookies()).filter((c) => c.name === 'gatehouse_session'), []);
    resp = await page.goto(`${base}/app/home`);
    assert.equal(resp.status(), 401);
    assert.equal(await page.locator('form[action="/auth/login"]').count(), 1);
  } finally {
    await context.close();
  }
});

test('an admin reaches the admin page; a sibling origin cannot ride the cookie', { skip: !haveChromium }, async () => {
  const base = demo.gateway;
  const { context, page } = await newPage();
  try {
    let resp = await page.goto(`${base}/app/admin/settings`);
    assert.equal(resp.status(), 401);
    assert.equal(await page.locator('input[name="return_to"]').inputValue(), '/app/admin/settings');
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice-password');
    await Promise.all([page.waitForURL(`${base}/app/admin/settings`), page.click('button[type="submit"]')]);
    assert.equal(await page.locator('h1').textContent(), 'Hello, alice');

    // Another origin on the same host (the demo upstream's port) is same-site, so the
    // SameSite=Lax cookie travels with its form POST; the gateway's CSRF check refuses it.
    const evil = `${demo.upstream}/evil`;
    await page.route(evil, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<form method="post" action="${base}/app/items"><button>Go</button></form>`,
      }),
    );
    await page.goto(evil);
    [resp] = await Promise.all([page.waitForNavigation(), page.click('button')]);
    assert.equal(resp.status(), 403);
    assert.match(await page.locator('.code').textContent(), /error: csrf_rejected/);
  } finally {
    await context.close();
  }
});

test('a user with MFA: the code page, a wrong code, then the right one', { skip: !haveChromium }, async () => {
  const base = demo.gateway;
  const { page, context } = await newPage();
  const signIn = async () => {
    await page.fill('#username', 'dave');
    await page.fill('#password', 'dave-password');
    const [resp] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    assert.equal(resp.status(), 401);
    assert.equal(await page.locator('h1').textContent(), 'Second factor required');
    assert.equal(await page.locator('form[action="/auth/mfa"] input[name="return_to"]').inputValue(), '/app/home');
  };
  try {
    await page.goto(`${base}/app/home`);
    await signIn();
    // A wrong code: the sign-in page again, still returning to the same page.
    const step = Math.floor(Date.now() / 1000 / 30);
    const near = new Set([-1, 0, 1].map((d) => totp(demo.daveTotp, step + d)));
    const wrong = ['000000', '111111', '222222', '333333'].find((c) => !near.has(c));
    await page.fill('#code', wrong);
    let [resp] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    assert.equal(resp.status(), 401);
    assert.equal(await page.locator('h1').textContent(), 'Invalid credentials');
    assert.equal(await page.locator('form[action="/auth/login"] input[name="return_to"]').inputValue(), '/app/home');
    // Password, then the right code: the browser lands where it wanted to go.
    await signIn();
    await page.fill('#code', totp(demo.daveTotp, Math.floor(Date.now() / 1000 / 30)));
    await Promise.all([page.waitForURL(`${base}/app/home`), page.click('button[type="submit"]')]);
    assert.equal(await page.locator('h1').textContent(), 'Hello, dave');
  } finally {
    await context.close();
  }
});
