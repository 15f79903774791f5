// What a login leaves behind in the RP's process once its session is gone: @openid-express/rp logs
// the same user in again and again against a real oidc-provider v9, the sessions are then dropped
// from the store (as expiry or logout would), and the app's heap is read after a full GC. A process
// that serves logins for weeks must not grow with them: whatever rp() keeps per login in memory
// (caches of ID-token payloads, single-flight entries, pending-login bookkeeping) has to be bounded.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-login-memory.mjs
// Knobs: BATCHES=5 batches of LOGINS=1000 logins. The first batch warms up (code, caches filling to
// their bounds); the growth per login is taken from the end of batch 2 to the end of the last one.
// Keep LOGINS a multiple of 500: the cache of decoded ID tokens (stored-login.ts) turns over every 500
// new tokens and holds up to 1 000 (≈ 1 MB here), so only then is it in the same state at every
// batch's end.
//
// Processes: this one drives the browser side (fetch); the app and the OP run in their own child
// processes, so the app's heap holds only what the app keeps.
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { serveMessages, startChild, stopChild, ask } from './lib/children.mjs';
import { Jar, roundTrip } from './lib/http.mjs';
import { startOidcOp } from './lib/oidc-op.mjs';
import { VARIANTS } from './lib/rp-apps.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const BATCHES = Number(process.env.BATCHES ?? 5);
const LOGINS = Number(process.env.LOGINS ?? 1000);
const CLIENT_SECRET = 'bench-client-secret-that-is-long-enough-0123456789';

/** Child: the app (rp-vs-express-openid-connect.mjs's `ours`), answering `heap` with its heap after the store is emptied and a full GC. */
async function runApp() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  let store;
  serveMessages({
    async build({ issuer }) {
      const built = await VARIANTS.ours.build({ baseURL, issuer, clientId: 'app', clientSecret: CLIENT_SECRET });
      store = built.store;
      server.on('request', built.app);
      return { loginPath: built.loginPath };
    },
    async heap() {
      const keys = Object.keys(store.sessions).length;
      for (const id of Object.keys(store.sessions)) delete store.sessions[id];
      await new Promise((resolve) => setTimeout(resolve, 200)); // let sockets and timers of the last requests settle
      globalThis.gc();
      globalThis.gc();
      return { heapUsed: process.memoryUsage().heapUsed, keys };
    },
  });
  process.send({ baseURL });
}

/** Child: the OP. */
async function runOp(clientsJson) {
  const { issuer } = await startOidcOp(JSON.parse(clientsJson));
  serveMessages({});
  process.send({ issuer });
}

async function main() {
  const started = Date.now();
  const { child: app, first: { baseURL } } = await startChild(SCRIPT, ['app']);
  const redirectUri = baseURL + VARIANTS.ours.callbackPath;
  const { child: op, first: { issuer } } = await startChild(SCRIPT, ['op', JSON.stringify([{ client_id: 'app', client_secret: CLIENT_SECRET, redirect_uris: [redirectUri] }])]);
  try {
    const { loginPath } = await ask(app, { cmd: 'build', issuer });
    const user = { opJar: new Jar(), interactions: 0 }; // one user, signed in at the OP after the first login
    const heaps = [];
    console.log(`node ${process.version}, ${BATCHES} batches of ${LOGINS} logins\n`);
    console.log('| logins so far | store records dropped | app heap after GC (MB) |');
    console.log('|---:|---:|---:|');
    for (let batch = 1; batch <= BATCHES; batch += 1) {
      for (let i = 0; i < LOGINS; i += 1) await roundTrip({ baseURL, loginPath }, new URL(issuer).origin, user);
      const { heapUsed, keys } = await ask(app, { cmd: 'heap' });
      heaps.push(heapUsed);
      console.log(`| ${batch * LOGINS} | ${keys} | ${(heapUsed / 1e6).toFixed(2)} |`);
    }
    const growth = BATCHES > 2 ? (heaps[BATCHES - 1] - heaps[1]) / ((BATCHES - 2) * LOGINS) : NaN;
    console.log(`\nheap growth per login, batch 2 to ${BATCHES}: ${Number.isFinite(growth) ? growth.toFixed(0) : '–'} B`);
    console.log(`(${Math.round((Date.now() - started) / 1000)} s in all)`);
  } finally {
    await Promise.all([stopChild(app), stopChild(op)]);
  }
}

const [role, arg] = process.argv.slice(2);
if (role === 'app') await runApp();
else if (role === 'op') await runOp(arg);
else await main();
