// An operator's branded pages (`[pages] dir`, issue 13) in real headless Chromium (Debian's
// `chromium`, driven by playwright-core): `gatehouse serve` with the templates of
// tests/browser/pages/ (a logo, the shop's colours, a layout the 403 page extends); a user
// signs in on the built-in sign-in page, then meets row 25 (`requirement_not_met`) on the
// checkout — the page lists each unmet requirement's message with its remedy link, one less
// once `gatehouse user set` adds the attribute — and row 15 (`insufficient_role`) on an
// admin page. Leaves docs/img/branded-403.png.
//
// Run: cargo build -p gatehouse && npm ci --prefix tests/browser && node --test tests/browser/
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM (default /usr/bin/chromium).
// Without Chromium the test says so and is skipped, except under GATEHOUSE_TEST_REQUIRE=all
// (set by .ci/run) or CI, where it fails.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { GATEHOUSE, IMG, haveChromium, launchChromium, requireChromium } from './support.mjs';

requireChromium();

const PAGES = fileURLToPath(new URL('./pages/', import.meta.url));
const PASSWORD = 'erin-password-1';

/** The shop: a checkout with two requirements (row 25), an admin area (row 15). */
function config(dir) {
  return `
[server]
listen = "127.0.0.1:0"
realm = "shop"

[upstream]
url = "http://127.0.0.1:9"

[store]
url = "sqlite://${join(dir, 'gatehouse.db')}"

[pages]
dir = "${PAGES}"

[[route]]
name = "checkout"
path = "/shop/checkout/**"
auth = ["session"]

[[route.require]]
attribute = "email_verified"
present = true
code = "email_unverified"
message = "Verify your email address."
remedy_url = "/account/email"

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
message = "Add a payment method to check out."
remedy_url = "/account/billing"

[[route]]
name = "admin"
path = "/shop/admin/**"
auth = ["session"]
roles = ["admin"]
`;
}

/** Runs a `gatehouse` command to completion; fails the test with its output otherwise. */
function gatehouse(args, input) {
  const r = spawnSync(GATEHOUSE, args, { input, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, `gatehouse ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `gatehouse serve -c file`; resolves with the process and the gateway URL once it listens. */
function serve(file) {
  const proc = spawn(GATEHOUSE, ['serve', '-c', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse serve did not start:\n${log}`)), 30_000);
    proc.on('exit', (code) => reject(new Error(`gatehouse serve exited (${code}):\n${log}`)));
    // Log lines go to stderr: `… gatehouse listening addr=127.0.0.1:PORT`.
    createInterface({ input: proc.stderr }).on('line', (line) => {
      log += `${line}\n`;
      const m = /gatehouse listening addr=(\S+)/.exec(line.replace(/\x1b\[[0-9;]*m/g, ''));
      if (m) {
        clearTimeout(timer);
        resolve({ proc, gateway: `http://${m[1]}` });
      }
    });
  });
}

let dir;
let file;
let server;
let browser;

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(GATEHOUSE), `${GATEHOUSE} is missing: run \`cargo build -p gatehouse\``);
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-pages-'));
  file = join(dir, 'gatehouse.toml');
  writeFileSync(file, config(dir));
  // The operator checks the templates before serving them (each rendered with sample data).
  gatehouse(['check', '-c', file]);
  gatehouse(['user', 'add', '-c', file, '--password-stdin', 'erin'], `${PASSWORD}\n`);
  server = await serve(file);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.proc.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The requirement codes the page lists, in order. */
const listed = (page) => page.locator('ul.todo li').evaluateAll((li) => li.map((e) => e.dataset.code));

test('the branded 403 page lists what is missing with remedies, and names the role', { skip: !haveChromium }, async () => {
  const base = server.gateway;
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  try {
    // 1. Not signed in: the built-in sign-in page (the operator has no sign-in.html).
    let resp = await page.goto(`${base}/shop/checkout/cart`);
    assert.equal(resp.status(), 401);
    await page.fill('#username', 'erin');
    await page.fill('#password', PASSWORD);
    [resp] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/shop/checkout/cart`),
      page.click('button[type="submit"]'),
    ]);

    // 2. Signed in, back on the checkout: the operator's 403 page (row 25), in the shop's
    //    layout, listing both unmet requirements with their messages and remedy links.
    assert.equal(resp.status(), 403);
    assert.equal(resp.headers()['x-gatehouse-error'], 'requirement_not_met');
    assert.equal(page.url(), `${base}/shop/checkout/cart`);
    assert.equal(await page.title(), 'Forbidden · Northwind Shop');
    assert.equal(await page.locator('header .brand').textContent(), 'Northwind Shop');
    assert.equal(await page.locator('header svg.logo').count(), 1);
    const colour = await page.locator('header').evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(colour, 'rgb(11, 93, 75)');
    assert.equal(await page.locator('.eyebrow').textContent(), '403 · Forbidden');
    assert.equal(await page.locator('h1').textContent(), 'Almost there');
    assert.match(await page.locator('.detail').textContent(), /^A requirement of this resource is not met\. /);
    assert.deepEqual(await listed(page), ['email_unverified', 'payment_method_required']);
    const email = page.locator('li[data-code="email_unverified"]');
    assert.equal(await email.locator('span').textContent(), 'Verify your email address.');
    assert.equal(await email.locator('a').getAttribute('href'), '/account/email');
    const billing = page.locator('li[data-code="payment_method_required"]');
    assert.equal(await billing.locator('span').textContent(), 'Add a payment method to check out.');
    assert.equal(await billing.locator('a').getAttribute('href'), '/account/billing');
    assert.equal(await page.locator('code.error').textContent(), 'requirement_not_met');
    assert.match(await page.locator('code.request-id').textContent(), /\S/);
    mkdirSync(IMG, { recursive: true });
    await page.screenshot({ path: `${IMG}branded-403.png` });

    // 3. The email is verified (`gatehouse user set`, seen by the gateway within a second):
    //    the page lists only the payment method.
    gatehouse(['user', 'set', '-c', file, 'erin', 'email_verified=true']);
    const deadline = Date.now() + 5_000;
    for (;;) {
      resp = await page.reload();
      assert.equal(resp.status(), 403);
      const codes = await listed(page);
      if (codes.length === 1) {
        assert.deepEqual(codes, ['payment_method_required']);
        break;
      }
      assert.ok(Date.now() < deadline, `still listed: ${codes}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // 4. Row 15 on the same template: the missing role, no requirement list.
    resp = await page.goto(`${base}/shop/admin/orders`);
    assert.equal(resp.status(), 403);
    assert.equal(resp.headers()['x-gatehouse-error'], 'insufficient_role');
    assert.equal(await page.locator('h1').textContent(), 'Staff only');
    assert.equal(await page.locator('.eyebrow').textContent(), '403 · Forbidden');
    assert.equal(await page.locator('.roles').textContent(), 'admin');
    assert.equal(await page.locator('ul.todo').count(), 0);
    assert.equal(await page.locator('code.error').textContent(), 'insufficient_role');
  } finally {
    await context.close();
  }
});
