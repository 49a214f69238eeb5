// The operator console in real headless Chromium (Debian's `chromium`, driven by
// playwright-core): an administrator signs in on the admin port of `gatehouse demo`, reads
// the overview with the tour's refusals in the charts, filters the audit trail, opens a
// refusal's explanation, suspends a user (confirming) and sees that user's next request
// refused. Leaves screenshots of the console in docs/img/.
//
// Run: cargo build -p gatehouse && npm ci --prefix tests/browser && node --test tests/browser/
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM (default /usr/bin/chromium).
// Without Chromium the test is skipped, except under CI, where it fails.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { GATEHOUSE, IMG, haveChromium, launchChromium, requireChromium } from './support.mjs';

requireChromium();

/** Starts `gatehouse demo` on free ports; resolves with the gateway and console URLs. */
function startDemo() {
  assert.ok(existsSync(GATEHOUSE), `${GATEHOUSE} is missing: run \`cargo build -p gatehouse\``);
  const args = ['demo', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
  const proc = spawn(GATEHOUSE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse demo did not start:\n${stderr}`)), 60_000);
    proc.on('exit', (code) => reject(new Error(`gatehouse demo exited (${code}):\n${stderr}`)));
    let gateway;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const g = /gateway on (http:\/\/[^,\s]+)/.exec(line);
      if (g) gateway = g[1];
      // `Console: http://ADDR/admin/ — sign in as alice / alice-password (an admin)`
      const c = /Console: (http:\/\/\S+\/admin\/) .*sign in as (\w+) \/ (\S+)/.exec(line);
      if (c && gateway) {
        clearTimeout(timer);
        resolve({ proc, gateway, console: c[1], user: c[2], password: c[3] });
      }
    });
  });
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

const basic = (user, pw) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

test('an administrator reads the charts, explains a refusal and suspends a user', { skip: !haveChromium }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    // 1. Not signed in: the console answers 401 with the sign-in page; signing in returns.
    let resp = await page.goto(demo.console);
    assert.equal(resp.status(), 401);
    await page.fill('#username', demo.user);
    await page.fill('#password', demo.password);
    await Promise.all([page.waitForURL(demo.console), page.click('button[type="submit"]')]);
    await page.waitForSelector('#who:has-text("Signed in as alice")');
    // From here on no request of the console fails (the browser's favicon guess aside).
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`${r.status()} ${r.url()}`);
    });

    // 2. The overview: the tour's refusals are in the charts (401 and 403, by reason).
    const chart401 = page.locator('figure.chart[data-status="401"]');
    await chart401.waitFor();
    assert.ok(Number(await chart401.getAttribute('data-total')) > 0, 'the 401 chart is empty');
    assert.ok(Number(await page.locator('figure.chart[data-status="403"]').getAttribute('data-total')) > 0);
    assert.ok((await page.locator('figure.chart rect.bar').count()) > 0);
    assert.match(await chart401.locator('.legend').textContent(), /missing_credentials/);
    assert.ok((await page.locator('#top-routes li').count()) > 0);
    // Every form control has a label; the tabs are reachable by keyboard.
    for (const input of await page.locator('main input, main select').all()) {
      const labelled = await input.evaluate((e) => e.labels.length > 0 || e.hasAttribute('aria-label'));
      assert.ok(labelled, `unlabelled control: ${await input.evaluate((e) => e.outerHTML)}`);
    }
    await page.focus('#tab-overview');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.locator('#tab-live').getAttribute('aria-selected'), 'true');
    await page.keyboard.press('ArrowLeft');
    mkdirSync(IMG, { recursive: true });
    await page.screenshot({ path: `${IMG}console-overview.png`, fullPage: true });

    // 3. The audit trail filtered by reason; a refusal's explanation beside its record.
    await page.click('#tab-audit');
    await page.fill('#audit-form input[name="reason"]', 'insufficient_role');
    await page.click('#audit-form button[type="submit"]');
    // The unfiltered rows stay on screen until the filtered answer replaces them: wait for it.
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#audit-rows tr td:nth-child(3)')];
      return cells.length > 0 && cells.every((c) => c.textContent === 'insufficient_role');
    });
    const reasons = await page.locator('#audit-rows tr td:nth-child(3)').allTextContents();
    assert.ok(reasons.length > 0 && reasons.every((r) => r === 'insufficient_role'), JSON.stringify(reasons));
    await page.locator('#audit-rows tr button.link').first().click();
    await page.waitForSelector('#why:not([hidden]) #why-steps li');
    assert.match(await page.locator('#why-record').textContent(), /insufficient_role/);
    assert.match(await page.locator('#why-steps').textContent(), /route: matched route/);
    await page.screenshot({ path: `${IMG}console-why.png`, fullPage: true });

    // 4. Suspend bob (confirmed, with a reason); his next request is refused (row 13).
    const before = await fetch(`${demo.gateway}/api/posts`, { headers: { Authorization: basic('bob', 'bob-password') } });
    assert.equal(before.status, 200);
    page.on('dialog', (d) => (d.type() === 'prompt' ? d.accept('Suspended from the console') : d.accept()));
    await page.click('#tab-users');
    const bob = page.locator('#user-rows tr', { has: page.locator('td:first-child', { hasText: /^bob$/ }) });
    await bob.locator('button:has-text("Suspend")').click();
    await page.waitForSelector('#user-rows tr:has(td:text-is("bob")) td:has-text("suspended")');
    const after = await fetch(`${demo.gateway}/api/posts`, { headers: { Authorization: basic('bob', 'bob-password') } });
    assert.equal(after.status, 403);
    const body = await after.json();
    assert.equal(body.error, 'account_suspended');
    assert.equal(body.reason, 'Suspended from the console');
    await page.screenshot({ path: `${IMG}console-users.png`, fullPage: true });

    // The change is in the audit trail, naming alice.
    const audit = await page.evaluate(async () => (await fetch('/admin/api/audit?route=admin-api&user=alice')).json());
    assert.ok(audit.items.some((r) => /suspended user `bob`/.test(r.detail)), JSON.stringify(audit.items));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
