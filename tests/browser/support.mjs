// What the browser tests share: where the binary, Chromium and the screenshots are, the
// skip-unless-CI rule, and how Chromium is launched. Not a test file itself.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = (rel) => fileURLToPath(new URL(rel, import.meta.url));
export const GATEHOUSE = process.env.GATEHOUSE_BIN || here('../../target/debug/gatehouse');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const IMG = here('../../docs/img/');
export const haveChromium = existsSync(CHROMIUM);

// The rule of the Rust tests (gatehouse-testkit): one line and a pass when Chromium is
// missing; a failure when GATEHOUSE_TEST_REQUIRE is `all` or names `chromium` (.ci/run), or
// under CI.
const SKIP_LINE =
  'skipped: chromium is not installed (apt-get install chromium; CHROMIUM=/path/to/chromium picks one)';

/** Without Chromium a browser test is skipped, unless required (see above), where it fails. */
export function requireChromium() {
  if (haveChromium) return;
  const required = (process.env.GATEHOUSE_TEST_REQUIRE ?? '')
    .split(',')
    .some((k) => ['all', 'chromium'].includes(k.trim().toLowerCase()));
  if (required || process.env.CI) {
    test('chromium is installed', () => {
      assert.fail(`GATEHOUSE_TEST_REQUIRE=${process.env.GATEHOUSE_TEST_REQUIRE ?? ''}: ${SKIP_LINE}`);
    });
  } else {
    console.log(SKIP_LINE);
  }
}

/**
 * Debian's Chromium, headless, through playwright-core (which downloads no browser). Another
 * test folder passes its own `playwright-core` module.
 */
export async function launchChromium(playwright) {
  const { chromium } = playwright ?? (await import('playwright-core'));
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
