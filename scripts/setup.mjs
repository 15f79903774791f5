// Installs the workspace's npm dependencies with a pinned pnpm (no global install, no corepack needed).
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const pnpm = 'npx -y pnpm@10.34.9';

export function run(cmd, opts = {}) {
  console.log(`$ ${cmd}`);
  execSync(cmd, { cwd: root, stdio: 'inherit', ...opts });
}

export function installDependencies() {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) && process.env.CI ? ' --frozen-lockfile' : '';
  run(`${pnpm} install${frozen} --reporter=append-only`);
}

export function build() {
  run(`${pnpm} -r --filter "./packages/*" build`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) installDependencies();
