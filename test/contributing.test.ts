import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const layout = readFileSync(join(root, 'CONTRIBUTING.md'), 'utf8');

/** The source files of a package, with their folder for the files of a sub-folder (`doctor/app.ts` → `doctor/`). */
function sources(pkg: string): string[] {
  const dir = join(root, 'packages', pkg, 'src');
  return readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
}

test.each(['rp', 'op'])('CONTRIBUTING.md names every file and folder of packages/%s/src', (pkg) => {
  const section = layout.split(`### \`packages/${pkg}/src\``)[1]?.split('\n### ')[0] ?? '';
  const missing = sources(pkg).filter((name) => !section.includes(`\`${name}\``));
  expect(missing).toEqual([]);
});
