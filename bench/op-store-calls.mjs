// The memory store's own cost per call, in one process: memoryAdapter() against oidc-provider's
// development store (the one a bare oidc-provider runs with), on the calls the measured endpoints make:
//   upsert — a client-credentials token saved into a full store (the token endpoint; the store is at
//            its cap, so every save also evicts);
//   first read — a code read once, as its exchange does (saved just before, never read before);
//   two reads — an access token and its grant, read again and again (userinfo);
//   busy grant — GRANT_N (default 10 000) access tokens saved under one grant, as a client that
//            logs the same user in or refreshes again and again leaves them (each save also indexes
//            the token under its grant).
// ns per call, best of ROUNDS (default 5) rounds of N (default 100 000) calls each.
//
// Run after a build:  node bench/op-store-calls.mjs
// BEFORE=<dir>: also runs the memoryAdapter() of another build, <dir>/packages/op/dist (for example a
// git worktree of an older commit, built with `tsc -b packages/op` after linking node_modules).
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const N = Number(process.env.N ?? 100_000);
const GRANT_N = Number(process.env.GRANT_N ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const opDir = new URL('../packages/op/', import.meta.url);
const requireFromOp = createRequire(new URL('package.json', opDir));
// oidc-provider's development store (lib/adapters/memory_adapter.js), each store its own LRU
const providerRoot = requireFromOp.resolve('oidc-provider').replace(/lib\/index\.js$/, '');
const { createMemoryAdapter } = await import(pathToFileURL(join(providerRoot, 'lib/adapters/memory_adapter.js')).href);

const stores = {
  'memoryAdapter()': async () => {
    const { memoryAdapter } = await import(new URL('dist/adapters/memory.js', opDir).href);
    const store = memoryAdapter();
    return (model) => store.adapterFor(model);
  },
  "oidc-provider's own": async () => createMemoryAdapter(),
};
if (process.env.BEFORE) {
  stores['memoryAdapter(), BEFORE'] = async () => {
    const { memoryAdapter } = await import(pathToFileURL(join(process.env.BEFORE, 'packages/op/dist/adapters/memory.js')).href);
    const store = memoryAdapter();
    return (model) => store.adapterFor(model);
  };
}

const id = () => randomBytes(32).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
// payloads as oidc-provider writes them (lib/models/formats/opaque.js): `extra` is set, undefined without extraTokenClaims
const clientCredentials = (jti) => ({ iat: now(), exp: now() + 600, clientId: 'svc', kind: 'ClientCredentials', jti, scope: 'api:read', extra: undefined });
const code = (jti, grantId) => ({
  iat: now(), exp: now() + 60, accountId: 'alice', acr: 'urn:mace:incommon:iap:silver', amr: ['pwd'], authTime: now(), claims: { id_token: { email: null } },
  clientId: 'app', codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', codeChallengeMethod: 'S256', grantId, kind: 'AuthorizationCode', jti,
  nonce: 'n-0S6_WzA2Mj', redirectUri: 'https://app.example.com/auth/callback/op', resource: undefined, scope: 'openid profile email', sessionUid: id(), sid: id(),
});
const grant = (jti) => ({ iat: now(), exp: now() + 14 * 86400, accountId: 'alice', clientId: 'app', kind: 'Grant', jti, openid: { scope: 'openid profile email', claims: ['sub', 'email'] } });
const accessToken = (jti, grantId) => ({
  iat: now(), exp: now() + 3600, accountId: 'alice', clientId: 'app', expiresWithSession: true, grantId, gty: 'authorization_code', kind: 'AccessToken', jti,
  scope: 'openid profile email', sessionUid: id(), sid: id(), extra: undefined,
});

/** ns per call of `call(i)` over `n` calls. */
async function time(n, call) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) await call(i);
  return Number(process.hrtime.bigint() - start) / n;
}

const results = {};
for (const [name, make] of Object.entries(stores)) {
  const adapterFor = await make();
  const [cc, codes, tokens, grants] = ['ClientCredentials', 'AuthorizationCode', 'AccessToken', 'Grant'].map(adapterFor);
  // fill the store to its cap first (10 000 for ours, 1000-2000 for oidc-provider's)
  for (let i = 0; i < 12_000; i += 1) await cc.upsert(`fill-${i}`, clientCredentials(`fill-${i}`), 600);
  const best = { upsert: Infinity, 'first read': Infinity, 'two reads': Infinity, 'busy grant': Infinity };
  const grantId = id();
  const tokenId = id();
  for (let round = 0; round < ROUNDS; round += 1) {
    const ccIds = Array.from({ length: N }, id);
    const ccs = ccIds.map(clientCredentials);
    best.upsert = Math.min(best.upsert, await time(N, (i) => cc.upsert(ccIds[i], ccs[i], 600)));
    // codes saved in batches that fit either store, then each read once
    let firstRead = 0;
    const batch = 500;
    for (let b = 0; b < N / batch; b += 1) {
      const ids = Array.from({ length: batch }, id);
      const codeGrant = id();
      for (const c of ids) await codes.upsert(c, code(c, codeGrant), 60);
      firstRead += await time(batch, (i) => codes.find(ids[i]));
      if (!(await codes.find(ids[batch - 1]))) throw new Error(`${name}: a code saved a moment ago is not found`);
    }
    best['first read'] = Math.min(best['first read'], firstRead / (N / batch));
    // saved again: the saves above pushed them out of oidc-provider's smaller store
    await grants.upsert(grantId, grant(grantId), 14 * 86400);
    await tokens.upsert(tokenId, accessToken(tokenId, grantId), 3600);
    if (!(await tokens.find(tokenId)) || !(await grants.find(grantId))) throw new Error(`${name}: the access token or grant is not found`);
    best['two reads'] = Math.min(best['two reads'], await time(N, async () => {
      await tokens.find(tokenId);
      await grants.find(grantId);
    }));
    const busy = id();
    const busyIds = Array.from({ length: GRANT_N }, id);
    const busyTokens = busyIds.map((t) => accessToken(t, busy));
    best['busy grant'] = Math.min(best['busy grant'], await time(GRANT_N, (i) => tokens.upsert(busyIds[i], busyTokens[i], 3600)));
  }
  results[name] = best;
}
const ref = results["oidc-provider's own"];
console.log(`\nns per call (best of ${ROUNDS} rounds of ${N}), and / oidc-provider's own:\n`);
console.log(`| store | upsert (client credentials, full store) | first read (a code) | two reads (access token + grant) | save into a grant of ${GRANT_N} tokens |\n|---|---:|---:|---:|---:|`);
for (const [name, r] of Object.entries(results)) {
  const cell = (k) => `${r[k].toFixed(0)} (${(r[k] / ref[k]).toFixed(2)}×)`;
  console.log(`| ${name} | ${cell('upsert')} | ${cell('first read')} | ${cell('two reads')} | ${cell('busy grant')} |`);
}
