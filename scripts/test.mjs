// `npm test`: install, build, type-check, then run every test and print "N passed, M failed".
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { root, run, installDependencies, build } from './setup.mjs';
import { ensureSystemDependencies } from './system-deps.mjs';

ensureSystemDependencies();
installDependencies();
build();
// Type errors fail the run, but the tests still run so their count is reported.
let typeErrors = false;
try {
  run('node_modules/.bin/tsc -p tsconfig.json');
} catch {
  typeErrors = true;
  console.error('Type-check failed (see above).');
}

const out = join(root, '.jest-results.json');
rmSync(out, { force: true });
const args = ['node_modules/jest/bin/jest.js', '--json', `--outputFile=${out}`, ...process.argv.slice(2)];
console.log(`$ node ${args.join(' ')}`);
const jest = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });

let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(out, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
  if (r.numTotalTests === 0) failed += 1;
} catch {
  failed += 1;
}
if (typeErrors) failed += 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(jest.status === 0 && failed === 0 ? 0 : 1);
