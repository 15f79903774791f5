// What rp() + requireAuth() add to a GET of a guarded route, in-process, with the real express-session and
// MemoryStore in front and a login kept in the session; no sockets (mock request/response), so the
// difference is not drowned by the HTTP stack's ≈ 300 µs per request on this machine. Three apps:
//   floor: express + express-session, the session hand-set to the same user and tokens, /me answers them;
//   plain: the same with rp() mounted, on a route that never reads req.oidc;
//   full:  rp() + requireAuth() + res.json(req.oidc.user) (the compact stored login read back).
// Interleaved rounds (the order rotates), medians, ratios round by round.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-me-session.mjs
// Knobs: N=20000 requests per app and round, MODES=floor,plain,full.
import session from 'express-session';
import express from 'express';
import { createRequire } from 'node:module';
import http from 'node:http';
const signature = createRequire(import.meta.resolve('express-session').replace('file://',''))('cookie-signature');
const rpmod = await import('@openid-express/rp');
const { toStoredLogin } = await import('../packages/rp/dist/stored-login.js');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const claims = { sub: 'alice', nonce: 'n'.repeat(43), aud: 'app', exp: 2e9, iat: 1999996400, iss: 'http://127.0.0.1:1' };
const idToken = `${b64({ alg: 'RS256', kid: 'k' })}.${b64(claims)}.${Buffer.alloc(256, 7).toString('base64url')}`;
const auth = { provider: 'op', user: { sub: 'alice', provider: 'op', claims: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', email_verified: true }, name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true },
  idToken, idTokenClaims: claims, accessToken: { value: 'x'.repeat(43), tokenType: 'bearer', scope: 'openid profile email', expiresAt: 2e9 }, authTime: claims.iat };
const SECRET = 'bench-session-secret-0123456789abcdef';
function build(mode) {
  const store = new session.MemoryStore();
  const data = { cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' } };
  if (mode === 'floor') data.user = auth.user, data.tokens = { id_token: idToken, access_token: 'x'.repeat(43), token_type: 'bearer', expires_at: 2e9 };
  else data.oidc = { auth: toStoredLogin(auth) };
  store.sessions.abc = JSON.stringify(data);
  const app = express();
  app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  if (mode !== 'floor') app.use(rpmod.rp({ baseURL: 'http://127.0.0.1:3000', providers: { op: rpmod.oidc({ issuer: 'http://127.0.0.1:1', clientId: 'app', clientSecret: 's', allowInsecureRequests: true }) } }));
  if (mode === 'floor') app.get('/me', (req, res) => void res.json(req.session.user));
  else if (mode === 'plain') app.get('/me', (req, res) => void res.json(auth.user));
  else app.get('/me', rpmod.requireAuth(), (req, res) => void res.json(req.oidc.user));
  return app;
}
const cookie = `sid=${encodeURIComponent('s:' + signature.sign('abc', SECRET))}`;
function MockRequest() {}
MockRequest.prototype = Object.create(http.IncomingMessage.prototype);
function MockResponse() {}
MockResponse.prototype = Object.create(http.ServerResponse.prototype);
function once(app) {
  return new Promise((resolve, reject) => {
    // created like Node's own objects (not from app.request), so Express's per-request
    // Object.setPrototypeOf really changes the prototype, as it does for a real server's requests
    const req = new MockRequest();
    Object.assign(req, { url: '/me', method: 'GET', headers: { cookie, accept: '*/*', host: '127.0.0.1' }, originalUrl: '/me', connection: {}, socket: {} });
    const headers = {};
    const res = new MockResponse();
    let sent = false;
    Object.defineProperty(res, 'headersSent', { get: () => sent });
    Object.assign(res, { statusCode: 200, locals: {},
      setHeader(k, v) { headers[k.toLowerCase()] = v; }, getHeader(k) { return headers[k.toLowerCase()]; }, removeHeader(k) { delete headers[k.toLowerCase()]; },
      writeHead() { sent = true; return this; }, write() { return true; }, end() { if (this.statusCode !== 200) reject(new Error('status ' + this.statusCode)); resolve(); return this; }, on() { return this; }, once() { return this; }, emit() {} });
    req.res = res; res.req = req;
    app.handle(req, res, (err) => reject(err ?? new Error('fell through')));
  });
}
const modes = (process.env.MODES ?? 'floor,plain,full').split(',');
const apps = Object.fromEntries(modes.map((m) => [m, build(m)]));
for (const m of modes) for (let i = 0; i < 5000; i++) await once(apps[m]);
const res = Object.fromEntries(modes.map((n) => [n, []]));
const N = Number(process.env.N ?? 20000);
for (let round = 0; round < 9; round++) for (const m of modes.map((_, i) => modes[(i + round) % modes.length])) {
  const t = process.cpuUsage();
  for (let i = 0; i < N; i++) await once(apps[m]);
  const u = process.cpuUsage(t); res[m].push((u.user + u.system) / N);
}
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`node ${process.version}, ${N} requests per app and round, 9 interleaved rounds (the first 5000 per app are warm-up)\n`);
console.log(`| app | CPU µs/request (median) | above ${modes[0]} | ${modes[0]} ratio per round (median) | per round |\n|---|---:|---:|---:|---|`);
for (const m of modes) {
  const ratios = res[m].map((x, i) => x / res[modes[0]][i]);
  console.log(`| ${m} | ${med(res[m]).toFixed(1)} | ${(med(res[m]) - med(res[modes[0]])).toFixed(1)} | ${med(ratios).toFixed(3)}× | ${res[m].map((x) => x.toFixed(1)).join(' ')} |`);
}
process.exit(0);
