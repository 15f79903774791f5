// Generates the README's option tables from the TSDoc of the options interfaces (the single source
// of truth), between markers `<!-- options:Name -->` and `<!-- /options:Name -->`.
//   node scripts/options-doc.mjs          rewrite README.md
//   node scripts/options-doc.mjs --check  exit 1 when README.md is out of date (used by the tests)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { root } from './setup.mjs';

/** Which interface of which file each README table documents. */
export const TABLES = {
  RpOptions: 'packages/rp/src/options.ts',
  ProviderConfig: 'packages/rp/src/options.ts',
  DynamicOptions: 'packages/rp/src/discovery/registration.ts',
  GoogleOptions: 'packages/rp/src/providers/google.ts',
  MicrosoftOptions: 'packages/rp/src/providers/microsoft.ts',
  GitHubOptions: 'packages/rp/src/providers/github.ts',
  OAuth2Options: 'packages/rp/src/providers/oauth2.ts',
  OpOptions: 'packages/op/src/options.ts',
  OpFeatures: 'packages/op/src/options.ts',
  OpTtl: 'packages/op/src/options.ts',
  OpThrottle: 'packages/op/src/options.ts',
};

const cell = (s) => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|').trim();

function members(file, name) {
  const src = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  let found;
  src.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === name) found = node;
  });
  if (!found) throw new Error(`interface ${name} not found in ${file}`);
  return found.members.filter(ts.isPropertySignature).map((m) => {
    const docs = ts.getJSDocCommentsAndTags(m).filter(ts.isJSDoc).map((d) => ts.getTextOfJSDocComment(d.comment) ?? '');
    return {
      name: m.name.getText(src) + (m.questionToken ? '' : ' *(required)*'),
      // an optional option's `| undefined` (there for exactOptionalPropertyTypes) says nothing to a reader
      type: m.type ? m.type.getText(src).replace(/^\((.*)\) \| undefined$/s, '$1').replace(/ \| undefined$/, '') : '',
      doc: docs.join(' '),
    };
  });
}

export function table(name) {
  const rows = members(TABLES[name], name).map((m) => `| \`${m.name.replace(' *(required)*', '')}\`${m.name.endsWith('*') ? ' *(required)*' : ''} | \`${cell(m.type)}\` | ${cell(m.doc)} |`);
  return ['| option | type | meaning and default |', '|---|---|---|', ...rows].join('\n');
}

export function render(readme) {
  let out = readme;
  for (const name of Object.keys(TABLES)) {
    const re = new RegExp(`(<!-- options:${name} -->\\n)[\\s\\S]*?(<!-- /options:${name} -->)`);
    if (!re.test(out)) throw new Error(`README.md lacks the markers for ${name}`);
    out = out.replace(re, (_, a, b) => `${a}${table(name)}\n${b}`);
  }
  return out;
}

const readmePath = join(root, 'README.md');
const current = readFileSync(readmePath, 'utf8');
const next = render(current);
if (process.argv.includes('--check')) {
  if (next !== current) {
    console.error('README.md option tables are out of date: run `node scripts/options-doc.mjs`.');
    process.exit(1);
  }
  console.log('README.md option tables match the options interfaces.');
} else if (next !== current) {
  writeFileSync(readmePath, next);
  console.log('README.md option tables updated.');
}
