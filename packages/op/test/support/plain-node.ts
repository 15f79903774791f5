import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';

const run = promisify(execFile);

/**
 * In a describe block: `src` modules of the package transpiled into a temporary directory next to a
 * node_modules that resolves oidc-provider and debug, with `child()` as its `check.js`, for what only
 * plain Node shows (oidc-provider's SSRF guard does not install inside jest's VM). `check(arg)` runs
 * the child with `arg` as JSON and gives back the JSON of its last line.
 */
export function plainNodeChild<T>(name: string, modules: string[], child: () => string): (arg: unknown) => Promise<T> {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `op-${name}-`));
    symlinkSync(resolve(__dirname, '../../node_modules'), join(dir, 'node_modules'), 'dir');
    mkdirSync(join(dir, 'src'));
    for (const module of modules) {
      const source = readFileSync(resolve(__dirname, `../../src/${module}.ts`), 'utf8');
      const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      writeFileSync(join(dir, 'src', `${module}.js`), out.outputText);
    }
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'check.js'), child());
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return async (arg) => {
    const { stdout } = await run(process.execPath, [join(dir, 'check.js'), JSON.stringify(arg)], { timeout: 20_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as T;
  };
}
