// What op()'s account lookup costs oidc-provider on every userinfo call (findAccount, then the
// account's claims for the token's scope), against the synchronous findAccount of the bare
// oidc-provider in bench/op-overhead.mjs. In one process, interleaved, native time per call.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-account-claims.mjs
// Knobs (environment): N=200000 calls per measurement, ROUNDS=5.
import { memoryAccounts } from '../packages/op/dist/index.js';
import { resolveOptions } from '../packages/op/dist/options.js';
import { buildConfiguration } from '../packages/op/dist/provider.js';

const N = Number(process.env.N ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ALICE = { id: 'alice', username: 'alice', password: 'wonderland-42', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } };
const SCOPE = 'openid profile email';

const options = resolveOptions({
  issuer: 'http://127.0.0.1:3001/op', clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['http://127.0.0.1/cb'] }],
  accounts: memoryAccounts([ALICE]), cookieKeys: ['bench-cookie-key-0123456789abcdef'],
});
const ours = buildConfiguration(options, { store: undefined, views: {}, jwks: { keys: [] }, cookieKeys: options.cookieKeys ?? [] }).findAccount;
const bare = (_ctx, id) => id === ALICE.id && { accountId: id, claims: () => ({ sub: id, ...ALICE.claims }) };

async function perCall(findAccount) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1) {
    const account = await findAccount(undefined, 'alice');
    await account.claims('userinfo', SCOPE, {}, []); // as oidc-provider's userinfo asks
  }
  return Number(process.hrtime.bigint() - started) / N;
}

const check = await (await ours(undefined, 'alice')).claims('userinfo', SCOPE, {}, []);
if (JSON.stringify(check) !== JSON.stringify({ name: ALICE.claims.name, email: ALICE.claims.email, email_verified: true, sub: 'alice' })) {
  throw new Error(`op()'s findAccount answered ${JSON.stringify(check)}`);
}
console.log(`node ${process.version}, ${N} calls per measurement, ${ROUNDS} interleaved rounds\n`);
console.log('| round | op() ns/call | bare ns/call | op() − bare ns |\n|---:|---:|---:|---:|');
for (let round = 1; round <= ROUNDS; round += 1) {
  // the order alternates, so neither always runs first
  let a;
  let b;
  if (round % 2) [a, b] = [await perCall(ours), await perCall(bare)];
  else [b, a] = [await perCall(bare), await perCall(ours)];
  console.log(`| ${round} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a - b).toFixed(0)} |`);
}
