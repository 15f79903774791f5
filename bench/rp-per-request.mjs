// What rp() costs a request in itself, without the network or a session store: CPU time per request
// of the same Express app with and without rp() (and requireAuth()), driven in-process with mock
// request/response objects and a session set by hand. Also the cost of reading and writing the
// compact stored login (readStoredLogin / toStoredLogin). Interleaved rounds, medians.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-per-request.mjs
// With BEFORE=<dir> (made by `node bench/build-rp-at.mjs <commit> <dir>`) the build of that commit runs
// next to the current one. N=210000 requests per variant, ROUNDS=7.
import { pathToFileURL } from 'node:url';
import express from 'express';

const N = Number(process.env.N ?? 210_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const current = await import('@openid-express/rp');
const before = process.env.BEFORE ? await import(pathToFileURL(`${process.env.BEFORE}/packages/rp/dist/index.js`).href) : undefined;
const { toStoredLogin } = await import('../packages/rp/dist/stored-login.js');

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const idTokenClaims = { sub: 'alice', nonce: 'MzKp68fx-iHg9HXJP0tdKzkcM5ZLThqoy9zc5eAkBeA', aud: 'app', exp: 2_000_000_000, iat: 1_999_996_400, iss: 'http://127.0.0.1:4000' };
const idToken = `${b64({ alg: 'RS256', kid: 'd478a820-c60e-412c-8097-e22578f57aa2' })}.${b64(idTokenClaims)}.${Buffer.alloc(256, 7).toString('base64url')}`;
const auth = {
  provider: 'op',
  user: { sub: 'alice', provider: 'op', claims: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', email_verified: true }, name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true },
  idToken, idTokenClaims, accessToken: { value: 'x'.repeat(43), tokenType: 'bearer', scope: 'openid profile email', expiresAt: 2_000_000_000 }, authTime: idTokenClaims.iat,
};
const store = { get() {}, set() {}, destroy() {}, touch() {} };

/** The app: a session set by hand, rp() unless `mode` is 'none', GET /me with or without requireAuth() answering req.oidc.user. */
function appOf(mod, mode, stored) {
  const app = express();
  app.use((req, _res, next) => {
    req.session = { oidc: { auth: stored } };
    req.sessionStore = store;
    next();
  });
  if (mode !== 'none') app.use(mod.rp({ baseURL: 'http://127.0.0.1:3000', providers: { op: mod.oidc({ issuer: 'http://127.0.0.1:1', clientId: 'app', clientSecret: 's', allowInsecureRequests: true }) } }));
  if (mode === 'requireAuth') app.get('/me', mod.requireAuth(), (req, res) => res.end(req.oidc.user.sub));
  else app.get('/me', (_req, res) => res.end('alice'));
  return app;
}

function once(app) {
  return new Promise((resolve) => {
    const req = Object.create(app.request);
    Object.assign(req, { url: '/me', method: 'GET', headers: { cookie: 'sid=abc', accept: '*/*' }, originalUrl: '/me' });
    const res = Object.create(app.response);
    Object.assign(res, { end: () => resolve(), setHeader() {}, getHeader() {}, locals: {} });
    req.res = res;
    res.req = req;
    app.handle(req, res, (err) => {
      console.error('the request fell through', err);
      process.exit(1);
    });
  });
}

const variants = {
  'no rp()': appOf(current, 'none', auth),
  ...(before ? { 'rp() before, a route without req.oidc': appOf(before, 'plain', auth) } : {}),
  'rp() now, a route without req.oidc': appOf(current, 'plain', toStoredLogin(auth)),
  ...(before ? { 'rp() before + requireAuth() + req.oidc.user': appOf(before, 'requireAuth', auth) } : {}),
  'rp() now + requireAuth() + req.oidc.user': appOf(current, 'requireAuth', toStoredLogin(auth)),
};
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (const app of Object.values(variants)) for (let i = 0; i < 20_000; i += 1) await once(app);
const perRound = Math.round(N / ROUNDS);
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [name, app] of Object.entries(variants)) {
    const start = process.cpuUsage();
    for (let i = 0; i < perRound; i += 1) await once(app);
    const used = process.cpuUsage(start);
    results[name].push((used.user + used.system) / perRound);
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const floor = median(results['no rp()']);
console.log(`node ${process.version}, ${perRound} requests per variant and round, ${ROUNDS} interleaved rounds, medians\n`);
console.log('| app | CPU µs/request | above "no rp()" | range over rounds |\n|---|---:|---:|---:|');
for (const [name, v] of Object.entries(results)) {
  console.log(`| ${name} | ${median(v).toFixed(2)} | ${(median(v) - floor).toFixed(2)} | ${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)} |`);
}

// the compact stored login: written once per login (and refresh), read once per request that uses req.oidc
const { readStoredLogin } = current;
const compact = toStoredLogin(auth);
const timeIt = (fn, n = 200_000) => {
  for (let i = 0; i < 20_000; i += 1) fn();
  const start = process.cpuUsage();
  for (let i = 0; i < n; i += 1) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
};
console.log(`\nstored login: ${JSON.stringify(auth).length} bytes whole, ${JSON.stringify(compact).length} bytes compact; ` +
  `toStoredLogin ${median([1, 2, 3].map(() => timeIt(() => toStoredLogin(auth)))).toFixed(2)} µs, ` +
  `readStoredLogin ${median([1, 2, 3].map(() => timeIt(() => readStoredLogin(compact)))).toFixed(2)} µs (median of 3)`);
