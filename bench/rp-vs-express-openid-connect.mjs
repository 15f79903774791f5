// @openid-express/rp against express-openid-connect (auth0) and passport + openid-client/passport,
// each as the same small Express app against the same real oidc-provider v9 on loopback.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-vs-express-openid-connect.mjs
// Knobs (environment): SECONDS=2.5 per measurement, ROUNDS=5 (interleaved; medians and per-round ratios),
// BASE=ours (the variant the ratio columns compare with), BEFORE=/tmp/rp-before (adds "ours-before", a
// build of an earlier commit made by bench/build-rp-at.mjs), OP_ID_TOKEN_CLAIMS=1 (the OP puts the
// scopes' claims in the ID token, so userinfo can add nothing),
// SERVER=prototypes (each app's server makes requests with Express's prototypes: see expressPrototypes()),
// CONNECTIONS=10 (autocannon), USERS=8 (virtual users of the round trip), ONLY=ours,eoc (a subset
// of the variants), PHASES=a,c (a subset of the measurements), DUMP=1 (prints one stored session
// of each, and each app's GET /me answer), PROFILE=ours,passport (writes V8 CPU profiles of those servers into
// bench/profiles/<name>/; summarize with node bench/lib/profile-top.mjs <file>).
// ALLOC_PROFILE=dir: every server samples its allocations (all of them, not only what survives) and
// writes dir/<role>-<name>-<pid>-<requests>req.heapprofile when it exits; compare two with
// node bench/lib/alloc-diff.mjs <a> <b> (bytes per request, by function).
// MEASURE=instructions: each app runs under Valgrind's callgrind and the tables add instructions
// per request / login (WARMUP=3000 requests first; before each count a full GC and REWARM=3000
// requests (a tenth as many logins) to re-optimise what the GC deoptimised; then COUNT=1500
// counted; LOGINS=300 counted logins; CONNECTIONS=1), which this VM's noise cannot move; slow (minutes per variant). The
// targets then compare instructions too; CPU time is still printed. CYCLES=3 (phases b and c): each
// counted window spans 3 whole GC cycles instead of COUNT requests or LOGINS logins (a fixed count
// holds one mark-compact more or less by luck, and each one sets off a wave of re-optimisation).
// The instruction tables also give the part spent in V8's optimizing compilers and the ratio without it: the
// compiling goes on long after warm-up (a third of a login after 3 300 logins; WARMUP=30000 for those), and
// moves with code size between builds (RESULTS.md, session 61). CALLGRIND_KEEP=dir keeps each window's dump.
// SIM=1 (with MEASURE=instructions): callgrind also simulates the caches and branch prediction, and
// the tables add L1 and last-level misses, mispredicted branches and callgrind's estimate of cycles
// per request (see bench/lib/instructions.mjs); about twice as slow again.
//
// RATIOS_OUT=file: the per-round ratios of each target as JSON, for bench/repeat.mjs (several runs).
//
// PAIRED=1000 (phase c): every variant's /me is loaded at the same time, each at that many requests
// per second, and each app's CPU is measured over the same seconds, so that what else the host runs
// at that moment weighs on every variant alike (on this VM, rounds taken one after another differ
// by up to 30 % for the same app). The req/s columns then only show the rate, and the req/s target
// is not judged.
//
// Processes: this one generates load (autocannon, fetch); each app and the OP run in their own
// child process, so an app under test has a core of its own while the OP is idle.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { IncomingMessage, ServerResponse, createServer } from 'node:http';
import { ask, gcTotals, serveMessages, startChild, stopChild } from './lib/children.mjs';
import { Jar, request, roundTrip } from './lib/http.mjs';
import { SIM, countInstructions, countInstructionsOverCycles } from './lib/instructions.mjs';
import { cpuMicros, hammer, loop } from './lib/load.mjs';
import { VARIANTS } from './lib/rp-apps.mjs';
import { median } from './lib/stats.mjs';
import { startOidcOp } from './lib/oidc-op.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.SECONDS ?? 2.5);
// one connection under callgrind: how many requests share an event-loop turn moves the count per request
const CONNECTIONS = Number(process.env.CONNECTIONS ?? (process.env.MEASURE === 'instructions' ? 1 : 10));
const USERS = Number(process.env.USERS ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PHASES = new Set((process.env.PHASES ?? 'a,b,c,d').split(','));
const CLIENT_SECRET = 'bench-client-secret-that-is-long-enough-0123456789';
const ROUND_TRIP_ONLY = new Set(['ours-no-userinfo', 'ours-fetch-userinfo']);
/** The variant the ratio columns compare the others with ("ours / this"). */
const BASE = process.env.BASE ?? 'ours';
const INSTRUCTIONS = process.env.MEASURE === 'instructions';
const WARMUP = Number(process.env.WARMUP ?? 3000);
const COUNT = Number(process.env.COUNT ?? 1500);
const REWARM = Number(process.env.REWARM ?? 3000);
const LOGINS = Number(process.env.LOGINS ?? 300);
const CYCLES = process.env.CYCLES ? Number(process.env.CYCLES) : undefined;
const PAIRED = process.env.PAIRED ? Number(process.env.PAIRED) : undefined;

// ---------------------------------------------------------------- child processes

/** Child: the OP. argv: op <clients JSON>. */
async function runOp(clientsJson) {
  const { issuer, server } = await startOidcOp(JSON.parse(clientsJson));
  // what each login costs the OP: its CPU, the requests it answers (by endpoint) and new connections
  const requests = {};
  let connections = 0;
  server.on('connection', () => void (connections += 1));
  server.on('request', (req) => {
    const path = req.url.split('?')[0];
    const key = /^\/interaction\//.test(path) ? '/interaction' : /^\/auth\//.test(path) ? '/auth/:uid' : path;
    requests[key] = (requests[key] ?? 0) + 1;
  });
  serveMessages({ cpu: () => ({ cpu: cpuMicros(), requests: { ...requests }, connections }) });
  process.send({ issuer });
}

/**
 * SERVER=prototypes: the app's server makes its requests and responses with Express's own prototypes
 * (`app.request`, `app.response`) from the start, so Express's per-request `Object.setPrototypeOf`
 * changes nothing and V8 keeps their hidden classes (see RESULTS.md, 2026-12-02 (late)).
 */
function expressPrototypes() {
  function Request(socket) { IncomingMessage.call(this, socket); }
  function Response(req, options) { ServerResponse.call(this, req, options); }
  return {
    options: { IncomingMessage: Request, ServerResponse: Response },
    use(app) {
      Request.prototype = app.request;
      Response.prototype = app.response;
    },
  };
}

/** Child: one app. Listens first (the OP needs its redirect URI), builds the app once told the issuer. */
async function runApp(name) {
  const prototypes = process.env.SERVER === 'prototypes' ? expressPrototypes() : undefined;
  const server = prototypes ? createServer(prototypes.options) : createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  let built;
  serveMessages({
    async build({ issuer }) {
      built = await VARIANTS[name].build({ baseURL, issuer, clientId: name, clientSecret: CLIENT_SECRET });
      prototypes?.use(built.app);
      server.on('request', built.app);
      return { loginPath: built.loginPath };
    },
    clear: () => dropPendingLogins(built.store),
    memory: ({ cookie }) => sessionMemory(built.store, cookie),
    cpu: () => ({ ...process.cpuUsage(), faults: process.resourceUsage().minorPageFault, gc: gcTotals() }),
    gc: () => { globalThis.gc(); return {}; },
  });
  process.send({ baseURL });
}

/** Drops the sessions of logins started and never finished (the login-route benchmark makes thousands). */
function dropPendingLogins(store) {
  for (const [id, s] of Object.entries(store?.sessions ?? {})) {
    if (!/idToken|id_token|"user"/.test(s) && !/^(oidc-)?bcl:/.test(id)) store.destroy(id, () => {});
  }
  return {};
}

/**
 * Bytes of one logged-in user in the MemoryStore (the session, plus any other record that names
 * it, such as the back-channel logout index), and the heap 10 000 such users take (median of 3).
 */
async function sessionMemory(store, cookie) {
  if (!store) return { storeBytes: 0, sessionBytes: 0, indexBytes: 0, heapPer10k: 0, sessionHeapPer10k: 0 };
  // MemoryStore keeps each session as its JSON string; the sample is the one `cookie` names
  const entries = Object.entries(store.sessions);
  const named = decodeURIComponent(cookie);
  const [sampleId, sample] = entries.find(([id, s]) => named.includes(id) && /idToken|id_token|"user"/.test(s)) ?? [];
  if (!sample) throw new Error('the cookie names no logged-in session in the store');
  // records that index sessions (back-channel logout by sub and sid): those naming the sample's id;
  // a user has one of each, here naming only its own session (each new user's: a record of its own)
  let index = storeIndex(store, entries, sampleId);
  if (!index.keys.length) index = await processIndex(store, sample, sampleId) ?? index;
  if (!index.keys.length && JSON.parse(sample).oidc?.auth) {
    // (rp() always indexes a login: finding none is the bench looking in the wrong place, as it did from session 51 to 60)
    throw new Error('no back-channel-logout index found for the sampled rp() login, in the store or in rp()\'s process map: phase (d) cannot measure it');
  }
  const sessionHeap = [];
  const withIndex = [];
  for (let i = 0; i < 3; i += 1) {
    sessionHeap.push(await heapOf10k((id) => store.set(id, JSON.parse(sample), () => {}), (id) => store.destroy(id, () => {})));
    withIndex.push(await heapOf10k((id) => {
      store.set(id, JSON.parse(sample), () => {});
      index.add(id);
    }, (id) => {
      store.destroy(id, () => {});
      index.remove(id);
    }));
  }
  const mid = (v) => v.sort((a, b) => a - b)[1];
  const sessionBytes = Buffer.byteLength(sample);
  return { storeBytes: sessionBytes + index.bytes, sessionBytes, indexBytes: index.bytes, heapPer10k: mid(withIndex), sessionHeapPer10k: mid(sessionHeap), sample, indexKeys: index.keys };
}

/** The index records kept in the session store itself (every store but express-session's MemoryStore, and rp() before session 51). */
function storeIndex(store, entries, sampleId) {
  const keys = entries.filter(([k, v]) => k !== sampleId && v.includes(sampleId)).map(([k]) => k);
  const record = (k, id) => ({ ...JSON.parse(store.sessions[k]), members: [id] });
  return {
    keys,
    bytes: keys.reduce((n, k) => n + Buffer.byteLength(k) + Buffer.byteLength(JSON.stringify(record(k, sampleId))), 0),
    add: (id) => { for (const k of keys) store.set(`${k}:${id}`, record(k, id), () => {}); },
    remove: (id) => { for (const k of keys) store.destroy(`${k}:${id}`, () => {}); },
  };
}

/**
 * With express-session's MemoryStore, rp() keeps its index in a map of the process (processCoordination),
 * which the store does not list: found through rp()'s own modules (those of the build the app runs),
 * and new users' records added with the same calls a login makes. Undefined for an app that is not rp().
 */
async function processIndex(store, sample, sampleId) {
  const auth = JSON.parse(sample).oidc?.auth;
  if (!auth) return undefined;
  const dist = new URL('.', import.meta.resolve('@openid-express/rp')).href;
  const [{ coordinationOf }, { logoutIndexKey, logoutScope }, { readStoredLogin }] = await Promise.all(
    ['coordination', 'session', 'stored-login'].map((m) => import(`${dist}${m}.js`)));
  const login = readStoredLogin(auth);
  const claims = login.idTokenClaims ?? {};
  const coordination = coordinationOf({ options: {} }, store);
  const scope = logoutScope({ issuer: claims.iss, clientId: typeof claims.aud === 'string' ? claims.aud : claims.azp });
  const keys = [];
  for (const [kind, value] of [['sub', login.user.sub], ['sid', claims.sid]]) {
    const key = typeof value === 'string' ? logoutIndexKey(login.provider, scope, kind, value) : undefined;
    if (key && (await coordination.readSet(key)).includes(sampleId)) keys.push(key);
  }
  const DAY = 86_400_000;
  return {
    keys,
    bytes: keys.reduce((n, k) => n + Buffer.byteLength(k) + Buffer.byteLength(sampleId), 0),
    add: (id) => { for (const k of keys) void coordination.addToSet(`${k}:${id}`, id, DAY, 500); },
    remove: (id) => { for (const k of keys) void coordination.takeSet(`${k}:${id}`); },
  };
}

/**
 * Heap growth after `add(id)` for new ids, per 10 000 (30 000 added, after full GCs; the store's pending
 * callbacks run first); `remove(id)` takes them out afterwards.
 */
async function heapOf10k(add, remove) {
  const N = 30_000;
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  const settle = async () => {
    await flush();
    globalThis.gc();
    await flush();
    globalThis.gc();
  };
  const ids = Array.from({ length: N }, () => randomUUID());
  // randomUUID() gives a string built of pieces, which V8 flattens the first time it is used as a
  // property key (a store's session id): done here, before the window, or the pieces it frees (≈ 400 B
  // per id) are subtracted from every session, which then counts less than its own JSON
  // (RESULTS.md, session 61)
  const asKeys = Object.create(null);
  for (const id of ids) asKeys[id] = 0;
  await settle();
  const before = process.memoryUsage().heapUsed;
  for (const id of ids) add(id);
  await settle();
  const heap = ((process.memoryUsage().heapUsed - before) * 10_000) / N;
  for (const id of ids) remove(id);
  await flush();
  return heap;
}

// ---------------------------------------------------------------- the load generator

async function startAll(names) {
  const profile = process.env.PROFILE;
  const apps = {};
  for (const name of names) {
    const dir = profile?.split(',').includes(name) ? fileURLToPath(new URL(`profiles/${name}/`, import.meta.url)) : undefined;
    const { child, first, callgrindDir } = await startChild(SCRIPT, ['app', name], { profile: dir, callgrind: INSTRUCTIONS });
    apps[name] = { name, child, baseURL: first.baseURL, callgrindDir };
  }
  const clients = names.map((name) => ({
    client_id: name, client_secret: CLIENT_SECRET, redirect_uris: [apps[name].baseURL + VARIANTS[name].callbackPath],
  }));
  const op = await startChild(SCRIPT, ['op', JSON.stringify(clients)]);
  for (const app of Object.values(apps)) Object.assign(app, await ask(app.child, { cmd: 'build', issuer: op.first.issuer }, INSTRUCTIONS ? 600_000 : undefined));
  return { apps, op: { child: op.child, issuer: op.first.issuer } };
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a, b) => (Number.isFinite(a / b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '–');
/** The median of one field over a variant's rounds. */
const med = (rounds, field) => median(rounds.map((r) => r[field]));
/** ours / this of one field, round by round (round i of ours against round i of this: they ran next to each other). */
const perRound = (ours, rounds, field) => rounds.map((r, i) => (ours[i] ? ours[i][field] / r[field] : NaN));
const listRatios = (values) => `${values.map((v) => (Number.isFinite(v) ? v.toFixed(2) : '–')).join(' ')} (median ${fmt(median(values), 2)}×)`;

function printTable(title, names, rows, columns) {
  if (Object.keys(rows).length === 0) return;
  console.log(`\n### ${title}\n`);
  console.log(`| variant | ${columns.map((c) => c.head).join(' | ')} |`);
  console.log(`|---|${columns.map(() => '---:').join('|')}|`);
  for (const name of names) if (rows[name]) console.log(`| ${VARIANTS[name].label} | ${columns.map((c) => c.value(rows[name], rows[BASE])).join(' | ')} |`);
}

/** Columns of a speed table; every figure is the median over the rounds, CPU with its range. */
const speedColumns = (unit, per) => [
  { head: `${unit} (median)`, value: (r) => fmt(med(r, 'rps')) },
  { head: 'p50 ms', value: (r) => fmt(med(r, 'p50'), 1) },
  { head: 'p99 ms', value: (r) => fmt(med(r, 'p99'), 1) },
  { head: `app CPU µs/${per} (median)`, value: (r) => fmt(med(r, 'cpuUs')) },
  { head: 'app CPU range over rounds', value: (r) => `${fmt(Math.min(...r.map((x) => x.cpuUs)))}-${fmt(Math.max(...r.map((x) => x.cpuUs)))}` },
  { head: `of which system µs/${per}`, value: (r) => fmt(med(r, 'sysUs')) },
  { head: `GC pause µs/${per}`, value: (r) => fmt(med(r, 'gcMs')) },
  { head: `page faults/${per}`, value: (r) => fmt(med(r, 'faults'), 2) },
  { head: `scavenges per 1000 ${per}`, value: (r) => fmt(med(r, 'minorGcs'), 2) },
  { head: `ours / this, ${unit} per round`, value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'rps')) : '–') },
  { head: `ours / this, CPU/${per} per round`, value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'cpuUs')) : '–') },
  ...(INSTRUCTIONS ? [
    { head: `instructions/${per} (median)`, value: (r) => fmt(med(r, 'instructions')) },
    { head: `ours / this, instructions/${per} per round`, value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'instructions')) : '–') },
    { head: `of which V8's optimizing compiler/${per}`, value: (r) => fmt(med(r, 'compiler')) },
    { head: `ours / this, instructions without the compiler/${per} per round`, value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'withoutCompiler')) : '–') },
  ] : []),
  ...(INSTRUCTIONS && SIM ? [
    { head: `L1 misses/${per}`, value: (r) => fmt(med(r, 'l1')) },
    { head: `LL misses/${per}`, value: (r) => fmt(med(r, 'll'), 1) },
    { head: `mispredicted branches/${per}`, value: (r) => fmt(med(r, 'mispredicted')) },
    { head: `est. cycles/${per} (median)`, value: (r) => fmt(med(r, 'cycles')) },
    { head: `ours / this, est. cycles/${per} per round`, value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'cycles')) : '–') },
  ] : []),
];

/** OP requests per login by endpoint, e.g. "/auth 1, /token 1, /me 1". */
const opRequests = (rounds) => {
  const total = {};
  let logins = 0;
  for (const r of rounds) {
    logins += r.requests;
    for (const [k, n] of Object.entries(r.opRequests)) total[k] = (total[k] ?? 0) + n;
  }
  return Object.entries(total).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${fmt(n / logins, 2)}`).join(', ');
};

const roundTripColumns = [
  ...speedColumns('logins/s', 'login'),
  { head: 'OP CPU µs/login (median)', value: (r) => fmt(med(r, 'opCpuUs')) },
  { head: 'ours / this, OP CPU per round', value: (r, ours) => (ours ? listRatios(perRound(ours, r, 'opCpuUs')) : '–') },
  { head: 'OP requests per login', value: (r) => opRequests(r) },
  { head: 'new OP connections per login', value: (r) => fmt(r.reduce((n, x) => n + x.opConnections, 0) / r.reduce((n, x) => n + x.requests, 0), 3) },
];

/** Runs `fn` while reading the CPU time of the app (and of the OP, with its requests and connections). */
async function measure(app, op, fn) {
  const [a0, o0] = await Promise.all([ask(app, { cmd: 'cpu' }), op && ask(op, { cmd: 'cpu' })]);
  const result = await fn();
  const [a1, o1] = await Promise.all([ask(app, { cmd: 'cpu' }), op && ask(op, { cmd: 'cpu' })]);
  const n = result.requests;
  const out = {
    ...result, cpuUs: (a1.user + a1.system - a0.user - a0.system) / n, sysUs: (a1.system - a0.system) / n,
    gcMs: (a1.gc.ms - a0.gc.ms) / n * 1000, faults: (a1.faults - a0.faults) / n, minorGcs: (a1.gc.minor - a0.gc.minor) / n * 1000, majorGcs: a1.gc.major - a0.gc.major,
  };
  if (op) {
    out.opCpuUs = (o1.cpu - o0.cpu) / result.requests;
    out.opRequests = Object.fromEntries(Object.entries(o1.requests).map(([k, n]) => [k, n - (o0.requests[k] ?? 0)]).filter(([, n]) => n > 0));
    out.opConnections = o1.connections - o0.connections;
  }
  return out;
}

const add = (results, name, result) => void (results[name] ??= []).push(result.compiler === undefined ? result : { ...result, withoutCompiler: result.instructions - result.compiler });

/**
 * measure() with the app's instructions counted by callgrind (MEASURE=instructions), after a full GC
 * and then `rewarm()`: the forced GC throws away much of V8's optimised code (it had embedded objects
 * of the warm-up's connections, now dead: "deoptimization, reason: weak objects" in --trace-deopt),
 * and without the re-warm the counted window re-optimised the whole hot path (a quarter of its
 * instructions were TurboFan), which a long-running server does not do per request.
 */
async function counted(app, op, fn, rewarm, batch, batchSize = 200) {
  await ask(app.child, { cmd: 'gc' });
  if (REWARM) await rewarm();
  // CYCLES=k (phases b and c): the window spans k whole GC cycles instead of COUNT requests or LOGINS logins (CPU figures then include the uncounted ones that align it)
  if (CYCLES && batch) return measure(app.child, op, () => countInstructionsOverCycles(app.child, app.callgrindDir, batch, { cycles: CYCLES, batch: batchSize }));
  return countInstructions(app.child, app.callgrindDir, () => measure(app.child, op, fn));
}

async function main() {
  const names = (process.env.ONLY?.split(',') ?? Object.keys(VARIANTS).filter((n) => !VARIANTS[n].optIn || (n === 'ours-before' && process.env.BEFORE))).filter((n) => VARIANTS[n]);
  const started = Date.now();
  console.log(`node ${process.version}, ${SECONDS} s per measurement, ${ROUNDS} ${PAIRED ? `paired rounds (phase c: all variants at once, ${PAIRED} req/s each)` : 'interleaved rounds'} (medians; ratios round by round), ${CONNECTIONS} connections, ${USERS} virtual users for the round trip`);
  const { apps, op } = await startAll(names);
  const opOrigin = new URL(op.issuer).origin;
  const results = { login: {}, roundTrip: {}, protected: {}, memory: {} };
  const loadAverage = [os.loadavg()[0]];
  try {
    // every user logs in at the OP once (with the interaction), which also warms discovery and JWKS
    const users = {};
    for (const name of names) {
      users[name] = Array.from({ length: USERS }, () => ({ opJar: new Jar(), interactions: 0 }));
      for (const user of users[name]) {
        if (!VARIANTS[name].noLogin) user.rpJar = await roundTrip(apps[name], opOrigin, user);
        // the floors keep a user without a login; `seedAfterLogin` diagnostics log in, then use a hand-set session
        if (VARIANTS[name].noLogin || VARIANTS[name].seedAfterLogin) await request((user.rpJar = new Jar()), `${apps[name].baseURL}/seed`);
      }
      for (const user of users[name]) user.interactions = 0;
    }
    const loginNames = names.filter((n) => !ROUND_TRIP_ONLY.has(n));
    if (process.env.DUMP) {
      for (const name of loginNames) {
        const me = await request(users[name][0].rpJar, `${apps[name].baseURL}/me`);
        const text = await me.text();
        console.error(`${name}: GET /me ${me.status}, ${Buffer.byteLength(text)} B: ${text}\n  headers: ${JSON.stringify([...me.headers])}`);
      }
    }
    // the machine is shared: rounds interleave the variants (the order rotates), medians are kept
    const order = (list, round) => list.map((_, i) => list[(i + round) % list.length]);
    // (c) first: every app then holds the same few sessions (the login phases leave thousands of logged-in
    // and dropped pending sessions in the login contenders' stores, and none in the floors')
    for (let round = 0; round < ROUNDS && PHASES.has('c'); round += 1) {
      if (PAIRED && !INSTRUCTIONS) {
        // all variants at once, at the same fixed rate, each app's CPU over the same seconds
        const load = (name, seconds) => hammer({ url: `${apps[name].baseURL}/me`, headers: { cookie: users[name][0].rpJar.header() }, seconds, connections: CONNECTIONS, rate: PAIRED, expectStatus: 200 });
        if (round === 0) await Promise.all(loginNames.map((name) => load(name, 2)));
        const measured = await Promise.all(loginNames.map((name) => measure(apps[name].child, undefined, () => load(name, SECONDS))));
        loginNames.forEach((name, i) => add(results.protected, name, measured[i]));
        console.error(`round ${round + 1}: protected route done, paired at ${PAIRED} req/s each (load average ${os.loadavg()[0].toFixed(1)})`);
        loadAverage.push(os.loadavg()[0]);
        continue;
      }
      for (const name of order(loginNames, round)) {
        const headers = { cookie: users[name][0].rpJar.header() };
        const url = `${apps[name].baseURL}/me`;
        if (INSTRUCTIONS) {
          if (round === 0) await hammer({ url, headers, seconds: 3600, maxRequests: WARMUP, connections: CONNECTIONS, expectStatus: 200 });
          const load = (n) => () => hammer({ url, headers, seconds: 3600, maxRequests: n, connections: CONNECTIONS, expectStatus: 200 });
          add(results.protected, name, await counted(apps[name], undefined, load(COUNT), load(REWARM), (n) => load(n)()));
          continue;
        }
        if (round === 0) await hammer({ url, headers, seconds: 1, connections: CONNECTIONS, expectStatus: 200 });
        add(results.protected, name, await measure(apps[name].child, undefined, () => hammer({ url, headers, seconds: SECONDS, connections: CONNECTIONS, expectStatus: 200 })));
      }
      console.error(`round ${round + 1}: protected route done (load average ${os.loadavg()[0].toFixed(1)})`);
      loadAverage.push(os.loadavg()[0]);
    }
    for (let round = 0; round < ROUNDS && PHASES.has('a'); round += 1) {
      for (const name of order(loginNames.filter((n) => !VARIANTS[n].noLoginRoute), round)) {
        const url = apps[name].baseURL + apps[name].loginPath;
        if (INSTRUCTIONS) {
          if (round === 0) await hammer({ url, seconds: 3600, maxRequests: WARMUP, connections: CONNECTIONS, expectStatus: 302 });
          await ask(apps[name].child, { cmd: 'clear' });
          const load = (n) => () => hammer({ url, seconds: 3600, maxRequests: n, connections: CONNECTIONS, expectStatus: 302 });
          add(results.login, name, await counted(apps[name], undefined, load(COUNT), load(REWARM)));
        } else {
          if (round === 0) await hammer({ url, seconds: 1, connections: CONNECTIONS, expectStatus: 302 });
          add(results.login, name, await measure(apps[name].child, undefined, () => hammer({ url, seconds: SECONDS, connections: CONNECTIONS, expectStatus: 302 })));
        }
        await ask(apps[name].child, { cmd: 'clear' }); // drop the pending-login sessions it made
      }
      console.error(`round ${round + 1}: login route done (load average ${os.loadavg()[0].toFixed(1)})`);
      loadAverage.push(os.loadavg()[0]);
    }
    for (let round = 0; round < ROUNDS && PHASES.has('b'); round += 1) {
      for (const name of order(names.filter((n) => !VARIANTS[n].noLogin), round)) {
        const app = apps[name];
        const logins = (seconds, maxIterations) => () => loop({
          users: users[name], seconds, maxIterations,
          iteration: async (user) => { user.rpJar = await roundTrip(app, opOrigin, user); },
        });
        if (INSTRUCTIONS && round === 0) await logins(3600, Math.ceil(WARMUP / 10))();
        // CYCLES=k: batches of 16 logins until k mark-compacts have run (a login allocates about ten `/me` requests' worth)
        const batch = (n) => logins(3600, n)();
        add(results.roundTrip, name, INSTRUCTIONS ? await counted(app, op.child, logins(3600, LOGINS), logins(3600, Math.ceil(REWARM / 10)), batch, 16) : await measure(app.child, op.child, logins(SECONDS, 20_000)));
        const interactions = users[name].reduce((n, u) => n + u.interactions, 0);
        if (interactions) throw new Error(`${name}: ${interactions} logins needed the OP's login page again`);
      }
      console.error(`round ${round + 1}: round trip done (load average ${os.loadavg()[0].toFixed(1)})`);
      loadAverage.push(os.loadavg()[0]);
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
  console.log(`load average (1 min) during the run: ${fmt(Math.min(...loadAverage), 1)}-${fmt(Math.max(...loadAverage), 1)} on ${os.cpus().length} cores`);
  printTable('(a) login route: GET → 302 to the OP (state, nonce, PKCE, session write)', loginNames, results.login, speedColumns('req/s', 'req'));
  printTable('(b) full login round trip: login → OP (already signed in) → callback (code exchange, ID token check) → GET /me', names, results.roundTrip, roundTripColumns);
  printTable('(c) protected route GET /me with a logged-in session', loginNames, results.protected, speedColumns('req/s', 'req'));
  printTable('(d) session size per logged-in user', loginNames, results.memory, [
    { head: 'session bytes', value: (r) => fmt(r.sessionBytes) },
    { head: 'index bytes', value: (r) => fmt(r.indexBytes) },
    { head: 'server store bytes', value: (r) => fmt(r.storeBytes) },
    { head: 'Cookie header bytes', value: (r) => fmt(r.cookieBytes) },
    { head: 'heap per 10k sessions (MB)', value: (r) => fmt(r.sessionHeapPer10k / 1e6, 1) },
    { head: 'heap per 10k sessions + index (MB)', value: (r) => fmt(r.heapPer10k / 1e6, 1) },
    { head: 'ours / this (session bytes)', value: (r, ours) => (ours ? ratio(ours.sessionBytes, r.sessionBytes) : '–') },
    { head: 'ours / this (store bytes)', value: (r, ours) => (ours ? ratio(ours.storeBytes, r.storeBytes) : '–') },
    { head: 'ours / this (heap, sessions)', value: (r, ours) => (ours ? ratio(ours.sessionHeapPer10k, r.sessionHeapPer10k) : '–') },
    { head: 'ours / this (heap, + index)', value: (r, ours) => (ours ? ratio(ours.heapPer10k, r.heapPer10k) : '–') },
  ]);
  printTargets(results);
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

/** The issue #11 targets, each as its ratios round by round and their median. */
function printTargets({ roundTrip, protected: prot, memory }) {
  const lines = [];
  const targets = []; // RATIOS_OUT: written for bench/repeat.mjs
  const vs = (rows, other, field, limit, cmp, of = 'ours') => {
    if (!rows[of] || !rows[other]) return;
    if (PAIRED && rows === prot && field === 'rps') return void lines.push(`- req/s ${of} / ${other}: not measured (PAIRED: every app answered the same fixed rate)`);
    const r = perRound(rows[of], rows[other], field);
    const m = median(r);
    const what = { rps: 'req/s', opCpuUs: 'OP CPU per login', instructions: 'instructions per request/login', withoutCompiler: 'instructions per request/login without V8\'s optimizing compiler' }[field] ?? 'CPU per request/login';
    const diagnostic = of !== 'ours' ? ' (diagnostic, not a target)' : '';
    lines.push(`- ${what} ${of} / ${other}: ${listRatios(r)} — ${diagnostic ? '' : 'target '}${cmp} ${limit}×: ${(cmp === '≥' ? m >= limit : m <= limit) ? 'met' : 'NOT met'}${diagnostic}`);
    targets.push({ name: `${what} ${of} / ${other}${diagnostic}`, ratios: r, limit, cmp });
  };
  vs(prot, 'floor', 'rps', 0.95, '≥');
  vs(prot, 'floor', 'cpuUs', 1.05, '≤');
  vs(prot, 'floor-tokens', 'rps', 0.95, '≥');
  vs(prot, 'floor-tokens', 'cpuUs', 1.05, '≤');
  if (INSTRUCTIONS) vs(prot, 'floor-tokens', 'instructions', 1.05, '≤');
  // every other app against floor-tokens too (not targets), so that bench/repeat.mjs can weigh them over runs
  for (const name of Object.keys(prot)) if (name !== 'ours' && name !== 'floor-tokens') vs(prot, 'floor-tokens', 'cpuUs', 1.05, '≤', name);
  vs(roundTrip, 'handwritten', 'cpuUs', 1.0, '≤');
  if (INSTRUCTIONS) vs(roundTrip, 'handwritten', 'instructions', 1.0, '≤');
  if (INSTRUCTIONS) vs(roundTrip, 'handwritten', 'withoutCompiler', 1.0, '≤');
  vs(roundTrip, 'handwritten', 'opCpuUs', 1.05, '≤');
  if (memory.ours && memory.passport) {
    lines.push(`- session bytes ours / passport: ${ratio(memory.ours.sessionBytes, memory.passport.sessionBytes)} (with the back-channel-logout index ${ratio(memory.ours.storeBytes, memory.passport.storeBytes)}) — target ≤ 1.1×`);
    lines.push(`- heap of 10 000 sessions ours / passport: ${ratio(memory.ours.sessionHeapPer10k, memory.passport.sessionHeapPer10k)} (with the index ${ratio(memory.ours.heapPer10k, memory.passport.heapPer10k)}) — target ≤ 1.1×`);
  }
  if (lines.length) console.log(`\n### Targets (issue #11)\n\n${lines.join('\n')}`);
  if (process.env.RATIOS_OUT) writeFileSync(process.env.RATIOS_OUT, JSON.stringify(targets));
}

const [role, arg] = process.argv.slice(2);
if (role === 'op') await runOp(arg);
else if (role === 'app') await runApp(arg);
else await main();
