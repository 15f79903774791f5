#!/usr/bin/env node
// IdPyOIDC's usage stories, runnable: `npm run story -- <name> [--json]`, `npm run story -- --list`,
// `npm run story -- all`. Exit code 0 only when every response of every story run was verified.
import { didYouMean } from '@openid-express/rp';

/** The stories, in the seed's order: command name → file (named after the seed's demo). */
export const STORIES = [
  'oauth2-cc',
  'oauth2-ropc',
  'oauth2-code',
  'oauth2-add-on-pkce',
  'oauth2-add-on-jar',
  'oauth2-add-on-par',
  'oauth2-add-on-dpop',
  'oauth2-token-exchange',
  'oauth2-token-refresh',
  'oauth2-token-revocation',
  'oidc-code',
  'oidc-code-claims',
  'oidc-code-dyn-reg',
  'oidc-code-id-token',
  'oidc-id-token',
  'oidc-add-on-dpop',
  'oauth2-device',
];

/** Seed demos without a story yet, and why. */
export const MISSING = {};

const USAGE = `Usage: npm run story -- <name> [--json]   run one story (a seed demo name works too: oauth2_cc.py)
       npm run story -- all [--json]      run every story, one after the other
       npm run story -- --list [--json]   the stories`;

/** `oauth2_cc.py`, `oauth2_cc`, `oauth2-cc.mjs` → `oauth2-cc`. */
const normalize = (name) => name.replace(/\.(py|mjs|js)$/, '').replace(/_/g, '-').toLowerCase();

/** `text` in lines of at most `width` characters. */
function wrap(text, width) {
  const lines = [''];
  for (const word of text.split(' ')) {
    if (lines.at(-1) && lines.at(-1).length + 1 + word.length > width) lines.push(word);
    else lines[lines.length - 1] = lines.at(-1) ? `${lines.at(-1)} ${word}` : word;
  }
  return lines;
}

async function load(name) {
  return (await import(`./${name}.mjs`)).story;
}

async function list(json) {
  for (const name of STORIES) {
    const story = await load(name);
    if (json) process.stdout.write(`${JSON.stringify({ type: 'story', name, seed: story.seed, title: story.title, shows: story.shows })}\n`);
    else process.stdout.write(`${name.padEnd(25)} ${story.seed}\n${wrap(story.shows, 54).map((l) => `${' '.repeat(26)}${l}\n`).join('')}`);
  }
  for (const [seed, why] of Object.entries(MISSING)) {
    if (json) process.stdout.write(`${JSON.stringify({ type: 'missing', seed, why })}\n`);
    else process.stdout.write(`\n${wrap(`Not runnable yet: ${seed} — ${why}.`, 80).join('\n')}\n`);
  }
}

async function main(argv) {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  if (args.includes('--list') || args.includes('-l')) return list(json).then(() => 0);
  if (args.length !== 1 || args[0].startsWith('-')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const names = args[0] === 'all' ? STORIES : [normalize(args[0])];
  for (const name of names) {
    if (STORIES.includes(name)) continue;
    const missing = Object.entries(MISSING).find(([seed]) => normalize(seed) === name);
    const near = didYouMean(name, STORIES);
    process.stderr.write(missing ? `${missing[0]}: ${missing[1]}.\n` : `No story "${args[0]}"${near ? `: did you mean "${near}"?` : ''} (npm run story -- --list)\n`);
    return 2;
  }
  const { runStory } = await import('./lib/story.mjs');
  let ok = true;
  for (const name of names) {
    const passed = await runStory(await load(name), { json });
    ok &&= passed;
    if (!json && names.length > 1) process.stdout.write('\n');
  }
  return ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
