// `npm run release` (= `node scripts/release.mjs --dry-run`): packs both packages (scripts/pack.mjs,
// into dist-tarballs/) and shows what would be published: each package's name, version and the
// tarball's contents (`npm publish --dry-run <tarball>`), and whether that version is on the
// registry already. `node scripts/release.mjs --publish` publishes them for real, the RP first (the
// OP depends on it), with `npm publish <tarball> --access public` (`--tag=<tag>` adds `--tag <tag>`).
//
// Refuses to run in CI (the CI environment variable set: nothing is published from CI) and with
// uncommitted changes (`git status --porcelain` not empty: a release is a commit). `--allow-dirty`
// lets a dry run go on with uncommitted changes, to try it out; never a real publish.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { root } from './setup.mjs';
import { pack } from './pack.mjs';

const USAGE = 'usage: node scripts/release.mjs [--dry-run (default) | --publish] [--tag=<dist-tag>] [--allow-dirty (dry run only)]';

function fail(message) {
  console.error(`release: ${message}`);
  process.exit(1);
}

function parse(argv) {
  const known = /^--(dry-run|publish|allow-dirty|tag=[\w.-]+|help)$/;
  const unknown = argv.filter((a) => !known.test(a));
  if (unknown.length || argv.includes('--help')) fail(`${unknown.length ? `unknown argument(s) ${unknown.join(' ')}\n` : ''}${USAGE}`);
  if (argv.includes('--publish') && argv.includes('--dry-run')) fail(`--publish or --dry-run, not both\n${USAGE}`);
  const publish = argv.includes('--publish');
  if (publish && argv.includes('--allow-dirty')) fail('--allow-dirty is for dry runs only: commit first');
  return { publish, allowDirty: argv.includes('--allow-dirty'), tag: argv.find((a) => a.startsWith('--tag='))?.slice('--tag='.length) };
}

/** The version of `name` on the registry that equals `version`, or undefined (404 or not that version). */
function published(name, version) {
  const r = spawnSync('npm', ['view', `${name}@${version}`, 'version', '--json'], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  if (/E404|404 Not Found/.test(r.stderr)) return undefined;
  fail(`could not ask the registry about ${name}@${version}:\n${r.stderr}`);
}

function npm(args) {
  console.log(`$ npm ${args.join(' ')}`);
  const r = spawnSync('npm', args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail(`npm ${args[0]} failed (${r.status ?? r.signal})`);
}

function main() {
  const { publish, allowDirty, tag } = parse(process.argv.slice(2));
  if (process.env.CI) fail(`the CI environment variable is set (CI=${process.env.CI}): releases are made by a maintainer, never from CI`);

  const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).trimEnd();
  if (dirty && !allowDirty) fail(`the git tree has uncommitted changes; commit or stash them first:\n${dirty}`);
  if (dirty) console.warn(`release: WARNING: uncommitted changes (--allow-dirty): this dry run packs them, a real publish would refuse.\n${dirty}\n`);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();

  const tarballs = pack();
  const versions = new Set(tarballs.map((t) => t.version));
  if (versions.size !== 1) fail(`the packages have different versions (${tarballs.map((t) => `${t.name}@${t.version}`).join(', ')}); bump them together`);
  const already = tarballs.filter((t) => published(t.name, t.version) === t.version);

  const extra = ['--access', 'public', ...(tag ? ['--tag', tag] : [])];
  console.log(`\n${publish ? 'Publishing' : 'Would publish'} (commit ${commit}${dirty ? ' + uncommitted changes' : ''}${tag ? `, dist-tag ${tag}` : ', dist-tag latest'}):`);
  for (const t of tarballs) {
    const note = already.includes(t) ? '  <- already on the registry: bump the version' : '';
    console.log(`  ${t.name}@${t.version}  ${relative(root, t.file)}  (${t.files.length} files)${note}`);
  }
  console.log('');

  if (!publish) {
    for (const t of tarballs) npm(['publish', '--dry-run', t.file, ...extra]);
    console.log(`\nDry run only: nothing was published.${already.length ? ` ${already.map((t) => `${t.name}@${t.version}`).join(', ')} is already on the registry: bump the version ("version" in packages/*/package.json) first.` : ''}`);
    console.log('To publish: commit, then `node scripts/release.mjs --publish` (logged in to npm with publish rights on the @openid-express scope).');
    return;
  }

  if (already.length) fail(`${already.map((t) => `${t.name}@${t.version}`).join(', ')} is already on the registry: bump the version first`);
  const whoami = spawnSync('npm', ['whoami'], { cwd: root, encoding: 'utf8' });
  if (whoami.status !== 0) fail('not logged in to the npm registry: run `npm login` first');
  console.log(`npm user: ${whoami.stdout.trim()}`);
  for (const t of tarballs) npm(['publish', t.file, ...extra]);
  const version = [...versions][0];
  console.log(`\nPublished ${tarballs.map((t) => `${t.name}@${t.version}`).join(' and ')} from commit ${commit}.`);
  console.log(`Tag the commit: git tag v${version} ${commit} && git push origin v${version}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
