/**
 * The fenced code blocks of README.md and the `<!-- snippet: ... -->` marker on the line before
 * each, which says how test/readme-snippets.test.ts checks the block:
 *
 * - `<!-- snippet: program <path> -->`: a complete program (what a user pastes into `app.mjs` /
 *   `app.ts`). Written to `<path>` in a scratch app whose node_modules link to this workspace,
 *   type-checked, run with the environment it asks for, and driven by the test's driver for `<path>`.
 *   Programs sharing a directory (`local-dev/op.mjs`, `local-dev/app.mjs`) belong together.
 * - `<!-- snippet: fragment, in scope: app, issuer -->`: code inserted into such a program;
 *   type-checked with the listed names declared (see `SCOPE` in ./sandbox.ts).
 * - `<!-- snippet: shell -->`: shell commands; `npm run <x>` / `npm test` must name a script of the
 *   root package.json, and `npm install @openid-express/<p> ...` must name <p>'s peer dependencies.
 *   `<!-- snippet: shell, run in <dir> -->` is also executed with bash in the programs' `<dir>`.
 * - `<!-- snippet: skip (<reason>) -->`: output or an illustration, not checked.
 */
import { readFileSync } from 'node:fs';

export type Marker =
  | { kind: 'program'; path: string }
  | { kind: 'fragment'; scope: string[] }
  | { kind: 'shell'; runIn?: string }
  | { kind: 'skip'; reason: string };

export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word (`ts`, `js`, `sh` ...). */
  lang: string;
  code: string;
  /** Undefined when the line before the fence carries no marker; `invalid` holds a marker that does not parse. */
  marker?: Marker;
  invalid?: string;
}

const MARKER = /^<!--\s*snippet:\s*(.*?)\s*-->$/;

/** Parses one marker's text (after `snippet:`); undefined when it is not one of the forms above. */
export function parseMarker(text: string): Marker | undefined {
  let m = /^program\s+([\w./-]+\.(?:mjs|cjs|js|ts|mts))$/.exec(text);
  if (m) return { kind: 'program', path: m[1]! };
  m = /^fragment(?:,\s*in scope:\s*([\w\s,]+))?$/.exec(text);
  if (m) return { kind: 'fragment', scope: (m[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean) };
  m = /^shell(?:,\s*run in\s+([\w.-]+))?$/.exec(text);
  if (m) return { kind: 'shell', runIn: m[1] };
  m = /^skip\s+\((.+)\)$/.exec(text);
  if (m) return { kind: 'skip', reason: m[1]! };
  return undefined;
}

/** Every fenced block of the Markdown file, with its marker. */
export function readBlocks(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !lines[i]!.startsWith(fence); i += 1) body.push(lines[i]!);
    let prev = start - 1;
    while (prev >= 0 && lines[prev]!.trim() === '') prev -= 1;
    const text = prev >= 0 ? MARKER.exec(lines[prev]!.trim())?.[1] : undefined;
    const marker = text === undefined ? undefined : parseMarker(text);
    blocks.push({
      line: start + 1,
      lang: open[2] ?? '',
      code: `${body.join('\n')}\n`,
      marker,
      invalid: text !== undefined && !marker ? text : undefined,
    });
  }
  return blocks;
}
