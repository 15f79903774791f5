// Counts the session store calls (get, set, destroy, touch; and the bytes they parse and write) that one
// whole login (login route, callback, GET /me) makes in the bench's `ours` app (bench/lib/rp-apps.mjs:
// MemoryStore, no coordination option), against a real oidc-provider, in one process. BEFORE=<dir> (bench/build-rp-at.mjs)
// counts that build too. LOGINS=20 (after 5 uncounted). TRACE=1 prints one login's calls first.
//   node bench/rp-store-calls.mjs
//   BEFORE=/tmp/rp-before node bench/rp-store-calls.mjs
import { createServer } from 'node:http';
import { VARIANTS } from './lib/rp-apps.mjs';
import { startOidcOp } from './lib/oidc-op.mjs';
import { roundTrip } from './lib/http.mjs';

const LOGINS = Number(process.env.LOGINS ?? 20);
let tracing = false;
const SECRET = 'bench-client-secret-that-is-long-enough-0123456789';
const builds = [['ours', undefined], ...(process.env.BEFORE ? [['ours-before', process.env.BEFORE]] : [])];
const servers = [];
for (const [name] of builds) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
}
const baseURLs = servers.map((s) => `http://127.0.0.1:${s.address().port}`);
const op = await startOidcOp(builds.map(([name], i) => ({ client_id: name, client_secret: SECRET, redirect_uris: [`${baseURLs[i]}/auth/callback/op`] })));
const opOrigin = new URL(op.issuer).origin;
for (const [i, [name, from]] of builds.entries()) {
  const { app, store, loginPath } = await VARIANTS.ours.build({ baseURL: baseURLs[i], issuer: op.issuer, clientId: name, clientSecret: SECRET, from });
  const counts = {};
  const count = (what, n = 1) => void (counts[what] = (counts[what] ?? 0) + n);
  for (const method of ['get', 'set', 'destroy', 'touch']) {
    const original = store[method].bind(store);
    store[method] = (...args) => {
      count(method);
      if (process.env.TRACE && tracing) console.log(`  ${method} ${String(args[0]).slice(0, 24)}${method === 'set' ? ' ' + JSON.stringify(args[1]).slice(0, 80) : ''}`);
      if (method === 'set') count('set bytes', JSON.stringify(args[1]).length);
      if (method === 'get') count('get bytes', store.sessions[args[0]]?.length ?? 0);
      return original(...args);
    };
  }
  servers[i].on('request', app);
  const user = { opJar: new (await import('./lib/http.mjs')).Jar(), interactions: 0 };
  const app1 = { baseURL: baseURLs[i], loginPath };
  for (let k = 0; k < 5; k++) await roundTrip(app1, opOrigin, user);
  for (const k of Object.keys(counts)) delete counts[k];
  if (process.env.TRACE) {
    tracing = true;
    console.log(`${name}: one login's calls`);
    await roundTrip(app1, opOrigin, user);
    tracing = false;
    for (const k of Object.keys(counts)) delete counts[k];
  }
  for (let k = 0; k < LOGINS; k++) await roundTrip(app1, opOrigin, user);
  console.log(`${name}: per login (login route, callback, GET /me):`, Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, +(v / LOGINS).toFixed(2)])));
}
for (const s of [...servers, op.server]) s.close();
process.exit(0);
