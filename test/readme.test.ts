import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..');

test('the README option tables match the TSDoc of the options interfaces', () => {
  const check = spawnSync(process.execPath, ['scripts/options-doc.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  expect(check.stderr).toBe('');
  expect(check.status).toBe(0);
});
