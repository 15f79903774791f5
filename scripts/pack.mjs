// `npm run pack`: builds both packages and packs each with `pnpm pack` into dist-tarballs/ (or
// `--out=DIR`), the tarballs `npm install <file>.tgz` and `npm publish <file>.tgz` take. pnpm pack
// writes the real version where package.json says `workspace:*`. Each tarball is then checked: it
// holds package.json, README.md, LICENSE, dist/index.js and dist/index.d.ts, no source map and no
// `//# sourceMappingURL` (the packages are built without maps: see packages/*/tsconfig.json), and no
// `workspace:` range. Writes DIR/tarballs.json ([{ name, version, file, files }]) for the scripts
// and tests that use the tarballs. `--no-build` packs what is in dist/ as it is.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve } from 'node:path';
import { root, pnpm, build } from './setup.mjs';

/** In publishing order: the OP depends on the RP. */
export const packages = ['rp', 'op'];

const REQUIRED = ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts'];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/**
 * Removes from packages/<pkg>/dist what no longer comes from src/: the output of a deleted or
 * renamed source file, and the source maps of earlier builds (the packages are built without maps).
 * `tsc -b` never deletes, and `files: ["dist"]` would ship them.
 */
function removeStaleOutput(pkg) {
  const dir = join(root, 'packages', pkg);
  const removed = [];
  for (const file of walk(join(dir, 'dist'))) {
    const rel = relative(join(dir, 'dist'), file);
    const stem = rel.replace(/(\.d\.ts|\.js)(\.map)?$/, '');
    const fromSource = !file.endsWith('.map') && stem !== rel && existsSync(join(dir, 'src', `${stem}.ts`));
    if (!fromSource) {
      rmSync(file);
      removed.push(rel);
    }
  }
  if (removed.length) console.log(`packages/${pkg}/dist: removed ${removed.length} file(s) no source produces (${removed.slice(0, 5).join(', ')}${removed.length > 5 ? ', ...' : ''})`);
}

/** Checks a tarball; returns its file list (paths inside `package/`) or throws saying what is wrong. */
export function checkTarball(file) {
  const files = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  const problems = [];
  for (const want of REQUIRED) if (!files.includes(want)) problems.push(`no ${want}`);
  const maps = files.filter((f) => f.endsWith('.map'));
  if (maps.length) problems.push(`source maps: ${maps.join(', ')}`);
  const manifest = JSON.parse(execFileSync('tar', ['-xOzf', file, 'package/package.json'], { encoding: 'utf8' }));
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(manifest[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${name} is ${range}`);
    }
  }
  const js = files.filter((f) => f.endsWith('.js'));
  const mapped = js.filter((f) => execFileSync('tar', ['-xOzf', file, `package/${f}`], { encoding: 'utf8' }).includes('//# sourceMappingURL='));
  if (mapped.length) problems.push(`sourceMappingURL comments in ${mapped.join(', ')}`);
  const license = execFileSync('tar', ['-xOzf', file, 'package/LICENSE'], { encoding: 'utf8' });
  if (license !== readFileSync(join(root, 'LICENSE'), 'utf8')) problems.push('its LICENSE is not the repository LICENSE');
  if (problems.length) throw new Error(`${file}:\n  ${problems.join('\n  ')}`);
  return { manifest, files };
}

/** Builds (unless `build: false`), packs both packages into `out`, checks the tarballs and returns them. */
export function pack({ out = join(root, 'dist-tarballs'), build: doBuild = true } = {}) {
  for (const pkg of packages) {
    const license = join(root, 'packages', pkg, 'LICENSE');
    if (!existsSync(license) || readFileSync(license, 'utf8') !== readFileSync(join(root, 'LICENSE'), 'utf8')) {
      throw new Error(`packages/${pkg}/LICENSE is missing or differs from ./LICENSE: copy it (cp LICENSE packages/${pkg}/LICENSE)`);
    }
  }
  if (doBuild) build();
  for (const pkg of packages) removeStaleOutput(pkg);
  mkdirSync(out, { recursive: true });
  const tarballs = [];
  for (const pkg of packages) {
    const dir = join(root, 'packages', pkg);
    const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = join(out, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
    rmSync(file, { force: true });
    console.log(`$ (packages/${pkg}) ${pnpm} pack --pack-destination ${out}`);
    execSync(`${pnpm} pack --pack-destination "${out}"`, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    if (!existsSync(file)) throw new Error(`pnpm pack did not write ${file}`);
    const { files } = checkTarball(file);
    console.log(`${relative(process.cwd(), file) || file}: ${name}@${version}, ${files.length} files, ${statSync(file).size} bytes (${files.filter((f) => !f.startsWith('dist/')).join(', ')}, dist/)`);
    tarballs.push({ name, version, file, files });
  }
  writeFileSync(join(out, 'tarballs.json'), `${JSON.stringify(tarballs, null, 2)}\n`);
  return tarballs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const out = args.find((a) => a.startsWith('--out='))?.slice('--out='.length);
  try {
    pack({ out: out ? resolve(out) : undefined, build: !args.includes('--no-build') });
  } catch (err) {
    console.error(`npm run pack: ${err.message}`);
    process.exit(1);
  }
}
