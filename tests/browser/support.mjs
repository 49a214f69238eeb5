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

/** Without Chromium a browser test is skipped, except under CI, where it fails. */
export function requireChromium() {
  if (haveChromium) return;
  if (process.env.CI) {
    test('chromium is installed (CI)', () => {
      assert.fail(`${CHROMIUM} is missing; .ci/run installs Debian's chromium`);
    });
  } else {
    console.log('skipped: chromium not installed');
  }
}

/** Debian's Chromium, headless, through playwright-core (which downloads no browser). */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
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
