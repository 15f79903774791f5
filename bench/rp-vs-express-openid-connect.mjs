// @openid-express/rp against express-openid-connect (auth0) and passport + openid-client/passport,
// each as the same small Express app against the same real oidc-provider v9 on loopback.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-vs-express-openid-connect.mjs
// Knobs (environment): SECONDS=2.5 per measurement, ROUNDS=2 (interleaved, best kept),
// CONNECTIONS=10 (autocannon), USERS=8 (virtual users of the round trip), ONLY=ours,eoc (a subset
// of the variants), PHASES=a,c (a subset of the measurements), DUMP=1 (prints one stored session
// of each), PROFILE=ours,passport (writes V8 CPU profiles of those servers into
// bench/profiles/<name>/; summarize with node bench/lib/profile-top.mjs <file>).
//
// Processes: this one generates load (autocannon, fetch); each app and the OP run in their own
// child process, so an app under test has a core of its own while the OP is idle.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { ask, serveMessages, startChild, stopChild } from './lib/children.mjs';
import { Jar, locationOf, request } from './lib/http.mjs';
import { cpuMicros, hammer, keepBest, loop, withCpu } from './lib/load.mjs';
import { VARIANTS } from './lib/rp-apps.mjs';
import { startOidcOp } from './lib/oidc-op.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.SECONDS ?? 2.5);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const USERS = Number(process.env.USERS ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const PHASES = new Set((process.env.PHASES ?? 'a,b,c,d').split(','));
const CLIENT_SECRET = 'bench-client-secret-that-is-long-enough-0123456789';
const ROUND_TRIP_ONLY = new Set(['ours-no-userinfo']);

// ---------------------------------------------------------------- child processes

/** Child: the OP. argv: op <clients JSON>. */
async function runOp(clientsJson) {
  const { issuer } = await startOidcOp(JSON.parse(clientsJson));
  serveMessages({});
  process.send({ issuer });
}

/** Child: one app. Listens first (the OP needs its redirect URI), builds the app once told the issuer. */
async function runApp(name) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  let built;
  serveMessages({
    async build({ issuer }) {
      built = await VARIANTS[name].build({ baseURL, issuer, clientId: name, clientSecret: CLIENT_SECRET });
      server.on('request', built.app);
      return { loginPath: built.loginPath };
    },
    clear: () => dropPendingLogins(built.store),
    memory: ({ cookie }) => sessionMemory(built.store, cookie),
    cpu: () => cpuMicros(),
  });
  process.send({ baseURL });
}

/** Drops the sessions of logins started and never finished (the login-route benchmark makes thousands). */
function dropPendingLogins(store) {
  for (const [id, s] of Object.entries(store?.sessions ?? {})) {
    if (!/idToken|id_token|"user"/.test(s) && !id.startsWith('oidc-bcl:')) store.destroy(id, () => {});
  }
  return {};
}

/**
 * Bytes of one logged-in user in the MemoryStore (the session, plus any other record that names
 * it, such as ours' back-channel logout index), and the heap 10 000 such users take.
 */
function sessionMemory(store, cookie) {
  if (!store) return { storeBytes: 0, sessionBytes: 0, indexBytes: 0, heapPer10k: 0 };
  // MemoryStore keeps each session as its JSON string; the sample is the one `cookie` names
  const entries = Object.entries(store.sessions);
  const named = decodeURIComponent(cookie);
  const [sampleId, sample] = entries.find(([id, s]) => named.includes(id) && (s.includes('idToken') || s.includes('id_token'))) ?? [];
  if (!sample) throw new Error('the cookie names no logged-in session in the store');
  // records that index sessions (ours: back-channel logout by sub and sid); a user has one of each,
  // here naming only its own session
  const indexKeys = entries.filter(([k, v]) => k !== sampleId && v.startsWith('{"ids":')).map(([k]) => k);
  const indexRecord = (id) => ({ ids: [id] });
  const indexBytes = indexKeys.reduce((n, k) => n + Buffer.byteLength(k) + Buffer.byteLength(JSON.stringify(indexRecord(sampleId))), 0);
  const N = 10_000;
  const ids = Array.from({ length: N }, () => randomUUID());
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  for (const id of ids) {
    store.set(id, JSON.parse(sample), () => {});
    for (const k of indexKeys) store.set(`${k}:${id}`, indexRecord(id), () => {});
  }
  globalThis.gc();
  const heap = process.memoryUsage().heapUsed - before;
  for (const id of ids) {
    store.destroy(id, () => {});
    for (const k of indexKeys) store.destroy(`${k}:${id}`, () => {});
  }
  const sessionBytes = Buffer.byteLength(sample);
  return { storeBytes: sessionBytes + indexBytes, sessionBytes, indexBytes, heapPer10k: heap, sample, indexKeys };
}

// ---------------------------------------------------------------- the load generator

/** One whole login of `user`: login → OP (interaction only without an OP session) → callback → /me. */
async function roundTrip(app, opOrigin, user) {
  const jar = new Jar(); // a new visitor of the app each time; the OP session is the user's
  let next = await locationOf(await request(jar, app.baseURL + app.loginPath), 'login route');
  for (let hop = 0; next.origin === opOrigin; hop += 1) {
    if (hop > 10) throw new Error('too many redirects at the OP');
    const interaction = /^\/interaction\/[^/]+$/.test(next.pathname);
    if (interaction) user.interactions += 1;
    const response = interaction
      ? await request(user.opJar, `${next.href}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'account=alice' })
      : await request(user.opJar, next.href);
    next = await locationOf(response, `OP ${next.pathname}`);
  }
  await locationOf(await request(jar, next.href), 'callback');
  const me = await request(jar, `${app.baseURL}/me`);
  const body = await me.json().catch(() => ({}));
  if (me.status !== 200 || body.sub !== 'alice') throw new Error(`GET /me after login answered ${me.status} ${JSON.stringify(body)}`);
  return jar;
}

async function startAll(names) {
  const profile = process.env.PROFILE;
  const apps = {};
  for (const name of names) {
    const dir = profile?.split(',').includes(name) ? fileURLToPath(new URL(`profiles/${name}/`, import.meta.url)) : undefined;
    const { child, first } = await startChild(SCRIPT, ['app', name], { profile: dir });
    apps[name] = { name, child, baseURL: first.baseURL };
  }
  const clients = names.map((name) => ({
    client_id: name, client_secret: CLIENT_SECRET, redirect_uris: [apps[name].baseURL + VARIANTS[name].callbackPath],
  }));
  const op = await startChild(SCRIPT, ['op', JSON.stringify(clients)]);
  for (const app of Object.values(apps)) Object.assign(app, await ask(app.child, { cmd: 'build', issuer: op.first.issuer }));
  return { apps, op: { child: op.child, issuer: op.first.issuer } };
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a, b) => (Number.isFinite(a / b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '–');

function printTable(title, names, rows, columns) {
  if (Object.keys(rows).length === 0) return;
  console.log(`\n### ${title}\n`);
  console.log(`| variant | ${columns.map((c) => c.head).join(' | ')} |`);
  console.log(`|---|${columns.map(() => '---:').join('|')}|`);
  for (const name of names) if (rows[name]) console.log(`| ${VARIANTS[name].label} | ${columns.map((c) => c.value(rows[name], rows.ours, rows.floor)).join(' | ')} |`);
}

const speedColumns = (unit, per) => [
  { head: unit, value: (r) => fmt(r.rps) },
  { head: 'p50 ms', value: (r) => fmt(r.p50, 1) },
  { head: 'p99 ms', value: (r) => fmt(r.p99, 1) },
  { head: `app CPU µs/${per}`, value: (r) => fmt(r.cpuUs) },
  { head: 'above the floor', value: (r, _ours, floor) => (floor && r !== floor ? fmt(r.cpuUs - floor.cpuUs) : '–') },
  { head: `ours / this (${unit})`, value: (r, ours) => (ours ? ratio(ours.rps, r.rps) : '–') },
  { head: `ours / this (CPU/${per})`, value: (r, ours) => (ours ? ratio(ours.cpuUs, r.cpuUs) : '–') },
];

async function main() {
  const names = (process.env.ONLY?.split(',') ?? Object.keys(VARIANTS)).filter((n) => VARIANTS[n]);
  const started = Date.now();
  console.log(`node ${process.version}, ${SECONDS} s per measurement, best of ${ROUNDS} interleaved rounds, ${CONNECTIONS} connections, ${USERS} virtual users for the round trip`);
  const { apps, op } = await startAll(names);
  const opOrigin = new URL(op.issuer).origin;
  const results = { login: {}, roundTrip: {}, protected: {}, memory: {} };
  try {
    // every user logs in at the OP once (with the interaction), which also warms discovery and JWKS
    const users = {};
    for (const name of names) {
      users[name] = Array.from({ length: USERS }, () => ({ opJar: new Jar(), interactions: 0 }));
      for (const user of users[name]) {
        if (!VARIANTS[name].noLogin) user.rpJar = await roundTrip(apps[name], opOrigin, user);
        else await request((user.rpJar = new Jar()), `${apps[name].baseURL}/seed`); // the floor keeps a user without a login
      }
      for (const user of users[name]) user.interactions = 0;
    }
    const loginNames = names.filter((n) => !ROUND_TRIP_ONLY.has(n));
    // the machine is shared: rounds interleave the variants, and each keeps its best round
    for (let round = 0; round < ROUNDS && PHASES.has('a'); round += 1) {
      for (const name of loginNames) {
        const url = apps[name].baseURL + apps[name].loginPath;
        if (round === 0) await hammer({ url, seconds: 1, connections: CONNECTIONS, expectStatus: 302 });
        keepBest(results.login, name, await withCpu(apps[name].child, () => hammer({ url, seconds: SECONDS, connections: CONNECTIONS, expectStatus: 302 })));
        await ask(apps[name].child, { cmd: 'clear' }); // drop the pending-login sessions it made
      }
      console.error(`round ${round + 1}: login route done`);
    }
    for (let round = 0; round < ROUNDS && PHASES.has('b'); round += 1) {
      for (const name of names.filter((n) => !VARIANTS[n].noLogin)) {
        const app = apps[name];
        keepBest(results.roundTrip, name, await withCpu(app.child, () => loop({
          users: users[name], seconds: SECONDS, maxIterations: 20_000,
          iteration: async (user) => { user.rpJar = await roundTrip(app, opOrigin, user); },
        })));
        const interactions = users[name].reduce((n, u) => n + u.interactions, 0);
        if (interactions) throw new Error(`${name}: ${interactions} logins needed the OP's login page again`);
      }
      console.error(`round ${round + 1}: round trip done`);
    }
    for (let round = 0; round < ROUNDS && PHASES.has('c'); round += 1) {
      for (const name of loginNames) {
        const headers = { cookie: users[name][0].rpJar.header() };
        const url = `${apps[name].baseURL}/me`;
        if (round === 0) await hammer({ url, headers, seconds: 1, connections: CONNECTIONS, expectStatus: 200 });
        keepBest(results.protected, name, await withCpu(apps[name].child, () => hammer({ url, headers, seconds: SECONDS, connections: CONNECTIONS, expectStatus: 200 })));
      }
      console.error(`round ${round + 1}: protected route done`);
    }
    for (const name of loginNames.filter((n) => PHASES.has('d') && !VARIANTS[n].noLogin)) {
      const cookie = users[name][0].rpJar.header();
      results.memory[name] = { ...(await ask(apps[name].child, { cmd: 'memory', cookie })), cookieBytes: Buffer.byteLength(cookie) };
      if (process.env.DUMP) console.error(`${name}: session ${results.memory[name].sample}\nindex records: ${results.memory[name].indexKeys}\ncookie: ${cookie}`);
    }
  } finally {
    await Promise.all([...Object.values(apps).map((a) => stopChild(a.child)), stopChild(op.child)]);
  }

  const loginNames = names.filter((n) => !ROUND_TRIP_ONLY.has(n));
  printTable('(a) login route: GET → 302 to the OP (state, nonce, PKCE, session write)', loginNames, results.login, speedColumns('req/s', 'req'));
  printTable('(b) full login round trip: login → OP (already signed in) → callback (code exchange, ID token check) → GET /me', names, results.roundTrip, speedColumns('logins/s', 'login'));
  printTable('(c) protected route GET /me with a logged-in session', loginNames, results.protected, speedColumns('req/s', 'req'));
  printTable('(d) session size per logged-in user', loginNames, results.memory, [
    { head: 'session bytes', value: (r) => fmt(r.sessionBytes) },
    { head: 'index bytes', value: (r) => fmt(r.indexBytes) },
    { head: 'server store bytes', value: (r) => fmt(r.storeBytes) },
    { head: 'Cookie header bytes', value: (r) => fmt(r.cookieBytes) },
    { head: 'heap per 10k sessions (MB)', value: (r) => fmt(r.heapPer10k / 1e6, 1) },
    { head: 'ours / this (store bytes)', value: (r, ours) => (ours ? ratio(ours.storeBytes, r.storeBytes) : '–') },
    { head: 'ours / this (cookie bytes)', value: (r, ours) => (ours ? ratio(ours.cookieBytes, r.cookieBytes) : '–') },
  ]);
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

const [role, arg] = process.argv.slice(2);
if (role === 'op') await runOp(arg);
else if (role === 'app') await runApp(arg);
else await main();
