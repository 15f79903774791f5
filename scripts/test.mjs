// `npm test`: install, build, type-check, then run every test and print "N passed, M failed".
// `npm test -- --also-node=22 --also-node=24` runs the suite again on Node 22 and on Node 24 (each
// fetched from the npm registry), the LTS lines oidc-provider 9 supports; CI does this. Other
// arguments go to jest. The packaging suite (test/packaging: pack, npm install into temporary apps,
// log in and out) and the multi-process suite (test/cluster: 2 OP + 2 RP child processes on Redis) run
// once, on the last Node of the run (Node 24 in CI): the others skip them.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root, run, installDependencies, build } from './setup.mjs';
import { ensureSystemDependencies } from './system-deps.mjs';

const alsoNode = process.argv.slice(2).filter((a) => a.startsWith('--also-node=')).map((a) => a.split('=')[1]);
const jestArgs = process.argv.slice(2).filter((a) => !a.startsWith('--also-node='));

ensureSystemDependencies();
await installDependencies();
build();

// Type errors fail the run, but the tests still run so their count is reported.
let typeErrors = false;
try {
  run('node_modules/.bin/tsc -p tsconfig.json');
} catch {
  typeErrors = true;
  console.error('Type-check failed (see above).');
}

/** Runs jest with `node` and returns its counts (a crash or no test at all counts as a failure). */
function jest(node, label, { packaging = true } = {}) {
  const out = join(root, '.jest-results.json');
  rmSync(out, { force: true });
  const args = ['node_modules/jest/bin/jest.js', '--json', `--outputFile=${out}`, ...jestArgs];
  console.log(`$ ${label}: node ${args.join(' ')}`);
  const env = packaging ? process.env : { ...process.env, OPENID_EXPRESS_SKIP_ONCE_SUITES: '1' };
  if (!packaging) console.log('(test/packaging and test/cluster are skipped on this Node: they run once, on the last Node of the run)');
  const status = spawnSync(node, args, { cwd: root, stdio: 'inherit', env }).status;
  try {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    const failed = r.numFailedTests + r.numRuntimeErrorTestSuites + (r.numTotalTests === 0 ? 1 : 0);
    const failures = failuresOf(r);
    if (r.numTotalTests === 0) failures.push('no test ran');
    if (!failed && status !== 0) failures.push(`jest exited with status ${status} though every test passed (see its output above: e.g. a coverage threshold, or a worker that crashed)`);
    return { passed: r.numPassedTests, failed: failed || (status === 0 ? 0 : 1), failures };
  } catch {
    return { passed: 0, failed: 1, failures: [`jest wrote no results (exit status ${status})`] };
  }
}

/** "file › test: first line of the error" for each failed test or suite, so the run's last lines say what failed. */
function failuresOf(r) {
  const lines = [];
  for (const suite of r.testResults ?? []) {
    const file = suite.name.startsWith(root) ? suite.name.slice(root.length + 1) : suite.name;
    const failedTests = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
    for (const t of failedTests) {
      lines.push(`${file} › ${t.fullName}: ${firstLines(t.failureMessages?.[0])}`);
    }
    if (!failedTests.length && suite.status === 'failed') {
      lines.push(`${file} (the suite failed to run): ${firstLines(suite.message)}`);
    }
  }
  return lines;
}

/** The first lines of a jest failure message, without colours or the stack, on one line. */
function firstLines(message = '') {
  const plain = message.replace(/\u001b\[[0-9;]*m/g, '');
  const lines = plain.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ') && !l.startsWith('●'));
  return lines.slice(0, 10).join(' | ').slice(0, 700);
}

function nodeBinary(major) {
  const cmd = `npx -y node@${major} -e "console.log(process.execPath)"`;
  return execFileSync('sh', ['-c', cmd], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
}

const runs = [{ label: `Node ${process.version}`, ...jest(process.execPath, `Node ${process.version}`, { packaging: alsoNode.length === 0 }) }];
for (const [i, major] of alsoNode.entries()) {
  let binary;
  try {
    binary = nodeBinary(major);
  } catch (err) {
    console.error(`Could not get Node ${major} from the npm registry: ${err.message}`);
    runs.push({ label: `Node ${major}`, passed: 0, failed: 1, failures: [`Node ${major} could not be fetched`] });
    continue;
  }
  runs.push({ label: `Node ${major}`, ...jest(binary, `Node ${major} (${binary})`, { packaging: i === alsoNode.length - 1 }) });
}

for (const r of runs) {
  console.log(`${r.label}: ${r.passed} passed, ${r.failed} failed`);
  for (const f of r.failures ?? []) console.log(`  failed: ${f}`);
}
const passed = runs.reduce((n, r) => n + r.passed, 0);
if (typeErrors) console.log('  failed: the type-check (tsc -p tsconfig.json; its errors are at the top of the run)');
const failed = runs.reduce((n, r) => n + r.failed, 0) + (typeErrors ? 1 : 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
