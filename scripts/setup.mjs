// Installs the workspace's npm dependencies with a pinned pnpm (no global install, no corepack needed).
import { execSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const pnpm = 'npx -y pnpm@10.34.9';

export function run(cmd, opts = {}) {
  console.log(`$ ${cmd}`);
  execSync(cmd, { cwd: root, stdio: 'inherit', ...opts });
}

// In a fresh clone pnpm links packages/rp's bin (dist/cli.js) into each workspace package that uses
// rp before build() has made it, and warns once for each (a dozen lines on the demo's first screen
// that read as a broken install): expected before the first build, so not shown.
const UNBUILT_BIN = /WARN\s+Failed to create bin at .*ENOENT.*(?:packages|@openid-express)[\\/]rp[\\/]dist[\\/]cli\.js/;

/** `pnpm install`, its output as it comes but for the warnings above; resolves when it succeeded. */
export function installDependencies() {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) && process.env.CI ? ' --frozen-lockfile' : '';
  const cmd = `${pnpm} install${frozen} --reporter=append-only`;
  console.log(`$ ${cmd}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, { cwd: root, shell: true, stdio: ['inherit', 'pipe', 'pipe'] });
    for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
      createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => {
        if (!UNBUILT_BIN.test(line)) to.write(`${line}\n`);
      });
    }
    child.once('error', reject);
    child.once('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed (${code ?? signal})`))));
  });
}

export function build() {
  run(`${pnpm} -r --filter "./packages/*" build`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await installDependencies().catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}
