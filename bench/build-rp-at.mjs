// Builds @openid-express/rp as it was at a git commit into a directory outside the repository, so
// that the RP benchmark can run it next to the current build (variant "ours-before"):
//   node bench/build-rp-at.mjs f572de2 /tmp/rp-before
//   BEFORE=/tmp/rp-before ONLY=ours-before,ours node bench/rp-vs-express-openid-connect.mjs
// Read-only for the repository: `git archive` of the commit, the repository's node_modules linked in.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const [commit, dir] = process.argv.slice(2);
if (!commit || !dir) {
  console.error('usage: node bench/build-rp-at.mjs <commit> <directory>');
  process.exit(2);
}
const out = resolve(dir);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const archive = execFileSync('git', ['archive', commit, 'packages/rp', 'tsconfig.base.json'], { cwd: root, maxBuffer: 1 << 28 });
execFileSync('tar', ['-x', '-C', out], { input: archive });
for (const [from, to] of [['node_modules', 'node_modules'], ['packages/rp/node_modules', 'packages/rp/node_modules']]) {
  if (!existsSync(join(out, to))) symlinkSync(join(root, from), join(out, to), 'dir');
}
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', join(out, 'packages/rp')], { stdio: 'inherit' });
console.log(`built ${commit} into ${join(out, 'packages/rp/dist')}`);
