// What memoryAdapter() pays to hand out a record: parsing its JSON text again (what it did before
// 2026-12-03) against copying the object parsed on the first read (`copyJson`), for the two records a
// userinfo call reads (its access token and grant, as oidc-provider saves them). In-process, no server.
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-copy-json.mjs
import { copyJson } from '../packages/rp/dist/copy-json.js';

const grant = { iat: 1796277832, exp: 1797487432, clientId: 'app', accountId: 'alice', kind: 'Grant', jti: '5-QC5ydQYm3ZVx1db1Nme01DKRGgBwgh9AZypqhzORN', openid: { scope: 'openid profile email' } };
const token = { iat: 1796277832, exp: 1796281432, accountId: 'alice', grantId: '5-QC5ydQYm3ZVx1db1Nme01DKRGgBwgh9AZypqhzORN', gty: 'authorization_code', scope: 'openid profile email', kind: 'AccessToken', jti: 'pDeRl9D15ZiRM_doEJdGM5rN1NHyzdItNKbhmMAuSjm', clientId: 'app' };
const texts = [JSON.stringify(token), JSON.stringify(grant)];
// other shapes first, so no call site stays monomorphic by luck
const others = [{ a: 1, b: { c: [1, 2, { d: 3 }] } }, { x: 'y', z: null }, { p: ['a', 'b'], q: { r: { s: 1 } } }, { uid: 'u', kind: 'Session', authorizations: { app: { sid: 's', grantId: 'g' } } }];
for (let i = 0; i < 100_000; i += 1) for (const o of others) { copyJson(o); JSON.parse(JSON.stringify(o)); structuredClone(o); }

let sink;
const N = 1_000_000;
const per = (fn) => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1) sink = fn();
  return Number(process.hrtime.bigint() - t0) / N;
};
const variants = {
  'JSON.parse of both texts (before)': () => [JSON.parse(texts[0]), JSON.parse(texts[1])],
  'copyJson of both parsed objects (now)': () => [copyJson(token), copyJson(grant)],
  'structuredClone of both': () => [structuredClone(token), structuredClone(grant)],
};
const rounds = Number(process.env.ROUNDS ?? 3);
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < rounds; r += 1) for (const [name, fn] of Object.entries(variants)) results[name].push(per(fn));
console.log(`node ${process.version}, ns per userinfo call's two records, ${rounds} rounds (median)\n\n| | ns | / parse |\n|---|---:|---:|`);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const base = median(results['JSON.parse of both texts (before)']);
for (const [name, v] of Object.entries(results)) console.log(`| ${name} | ${median(v).toFixed(0)} | ${(median(v) / base).toFixed(2)}× |`);
void sink;
