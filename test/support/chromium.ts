import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; the wrapper at /usr/bin/chromium prints noise, the real binary does not. */
const CANDIDATES = [process.env.CHROMIUM_BIN, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(
  (p): p is string => Boolean(p),
);

/**
 * Launches a real headless Chromium with playwright-core. Throws (never skips) when none is
 * installed, saying what to install.
 *
 * `extraArgs` are added to the command line (e.g. `--enable-features=...`).
 *
 * @example
 *   let browser: Browser;
 *   beforeAll(async () => { browser = await launchChromium(); });
 *   afterAll(() => browser.close());
 */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const executablePath = CANDIDATES.find((p) => existsSync(p));
  if (!executablePath) {
    throw new Error('Chromium not found at /usr/bin/chromium: install it (`apt-get install -y chromium`); browser tests need a real browser.');
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', ...extraArgs],
  });
}
