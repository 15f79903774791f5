// @openid-express/op against a bare oidc-provider mounted in Express, with the same clients,
// accounts, keys, features, claims and response types (both publish the same discovery document):
// what op() adds on the endpoints machines call most (discovery, token with client_credentials,
// userinfo, and `code`: the token endpoint exchanging an authorization code).
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-overhead.mjs
// Knobs (environment): SECONDS=2 per measurement, ROUNDS=4 (interleaved; best kept, and the
// ours / bare CPU ratio of each round, side by side, with its median),
// CONNECTIONS=10, ONLY=discovery,token (a subset of the endpoints), PROFILE=ours,bare (writes V8
// CPU profiles of those servers into bench/profiles/<name>/).
// MEASURE=instructions: instead of CPU time, each OP runs under Valgrind's callgrind and the table
// is instructions per request (WARMUP=3000 requests first; before each count a full GC and
// REWARM=3000 requests to re-optimise what it deoptimised; then COUNT=1500 counted (`code`: in
// batches of 400, counting paused while each is minted); ROUNDS=2, CONNECTIONS=1; GC=native, the
// default, or GC=predictable: the counted OP's fixed GC schedule, see bench/lib/instructions.mjs):
// slow (minutes), but a few percent stand out of this VM's noise. Needs the Debian package valgrind.
// CYCLES=3 (with MEASURE=instructions): each counted window spans 3 whole GC cycles (from just after a
// mark-compact to just after the third one after it) instead of COUNT requests; not for `code`. A
// fixed count holds 3 or 4 mark-compacts by luck, which moved userinfo's ratio by ±3 %.
// VARIANTS=ours,ours-1k,bare (CPU time too, where ours and bare always run; started and loaded in the order given): a subset of the OPs (`ours-1k`: op() with memoryAdapter({ maxRecords:
// 1000 }), the capacity of oidc-provider's development store; op()'s default keeps 2 000;
// `ours-bare-account`: op() with bare's synchronous findAccount, to weigh op()'s account store;
// `bare-our-store`: bare with op()'s memoryAdapter(), to weigh the store; `ours-callback`: op()'s
// provider mounted as bare is, without op()'s Express app, to weigh what op() puts in front of it).
// Every variant's per-round ratios go to RATIOS_OUT too, marked "diagnostic, not a target".
// PAIRED=1000 (CPU time): in each round every OP is loaded at the same time, each at that many
// requests per second, and each OP's CPU is measured over the same seconds, so that what else the
// host runs weighs on every OP alike (`code`: the 400 codes minted for each run, then it ends).
// The req/s columns then only show the rate.
//
// Diagnostics: WARM_EACH=1 (with PAIRED) loads every OP for a second before each round's window, not
// only the first round's, so no window starts right after the OPs switched endpoint;
// OURS_MAX_RECORDS=n gives ours memoryAdapter({ maxRecords: n }) (default 2 000; keep n ≥ 2000: the
// code rounds need their 400 codes and tokens held).
//
// RATIOS_OUT=file: the per-round ratios of each endpoint as JSON, for bench/repeat.mjs (several runs).
//
// Processes: this one generates load (autocannon); each OP runs in its own child process.
import { signingKey } from './lib/signing-key.mjs';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import Provider from 'oidc-provider';
import { ask, serveMessages, startChild, stopChild } from './lib/children.mjs';
import { countInstructions, countInstructionsOverCycles, pausedWhile } from './lib/instructions.mjs';
import { cpuMicros, hammer, keepBest, withCpu } from './lib/load.mjs';
import { median } from './lib/stats.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.SECONDS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const PAIRED = process.env.PAIRED ? Number(process.env.PAIRED) : undefined;

const SERVICE = { client_id: 'svc', client_secret: 'svc-secret-that-is-long-enough-0123456789', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
const APP = { client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['https://app.example.com/auth/callback/op'] };
const ALICE = { id: 'alice', username: 'alice', password: 'wonderland-42', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } };
// the claims op() configures oidc-provider with (every standard claim of OIDC Core 5.4, by scope):
// bare gets the same, so both filter the same claims and publish the same claims_supported
const { SCOPE_CLAIMS } = await import('@openid-express/op');
const COOKIE_KEYS = ['bench-cookie-key-0123456789abcdef'];
const DAY = 24 * 3600;
// oidc-provider's own store keeps 1000 records, and each exchange adds a token: more single-use
// codes minted at once would be evicted before their exchange
const CODES_AT_ONCE = 400;

// ---------------------------------------------------------------- child processes

/** @openid-express/op as the README mounts it: op() at the issuer's path, running express-session itself where a browser flow needs it. */
async function ours(issuer, jwks, more = {}) {
  const { op, memoryAccounts, memoryAdapter } = await import('@openid-express/op');
  if (process.env.OURS_MAX_RECORDS) more = { adapter: memoryAdapter({ maxRecords: Number(process.env.OURS_MAX_RECORDS) }), ...more };
  const app = express();
  const opApp = op({
    issuer, jwks, cookieKeys: COOKIE_KEYS, clients: [SERVICE, APP], accounts: memoryAccounts([ALICE]),
    features: { clientCredentials: true }, scopes: ['api:read'],
    session: session({ secret: 'bench-session-secret-0123456789', resave: false, saveUninitialized: false }), ...more,
  });
  app.use('/op', opApp);
  return { app, provider: opApp.provider };
}

/** Diagnostic: op()'s provider (its configuration, store and accounts) mounted as bare is, `provider.callback()` at the issuer's path, without op()'s Express app in front. */
async function oursCallback(issuer, jwks) {
  const built = await ours(issuer, jwks);
  const app = express();
  app.use('/op', built.provider.callback());
  return { app, provider: built.provider };
}

/** ours with a store of 1000 records (the default is 2 000). */
async function oursSmallStore(issuer, jwks) {
  const { memoryAdapter } = await import('@openid-express/op');
  return ours(issuer, jwks, { adapter: memoryAdapter({ maxRecords: 1000 }) });
}

/** Diagnostic: ours with bare's synchronous findAccount (what op()'s account store costs per userinfo). */
async function oursBareAccount(issuer, jwks) {
  return ours(issuer, jwks, { provider: { findAccount: bareFindAccount } });
}

/** Bare's account lookup: alice's claims as they are, synchronously. */
function bareFindAccount(_ctx, id) {
  return id === ALICE.id && { accountId: id, claims: () => ({ sub: id, ...ALICE.claims }) };
}

/** oidc-provider as its documentation mounts it in Express: provider.callback() at the issuer's path. */
async function bare(issuer, jwks, { withSession = false, ourStore = false } = {}) {
  let store;
  if (ourStore) store = (await import('@openid-express/op')).memoryAdapter();
  const provider = new Provider(issuer, {
    ...(store ? { adapter: (name) => store.adapterFor(name) } : {}),
    clients: [SERVICE, APP], jwks, cookies: { keys: COOKIE_KEYS },
    claims: { ...SCOPE_CLAIMS, openid: ['sub', 'acr', 'amr'], auth_time: null, sid: null }, scopes: ['openid', 'offline_access', 'api:read'],
    findAccount: bareFindAccount,
    // the features op() turns on by default, so both publish the same metadata and run the same checks
    features: {
      devInteractions: { enabled: false }, clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true },
      pushedAuthorizationRequests: { enabled: true }, requestObjects: { enabled: true }, dPoP: { enabled: true },
      backchannelLogout: { enabled: true }, claimsParameter: { enabled: true }, rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    // op()'s response types (Basic, Implicit and Hybrid certification), so both validate the same
    responseTypes: ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token', 'none'],
    allowOmittingSingleRegisteredRedirectUri: false,
    rotateRefreshToken: true,
    ttl: { AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 600, IdToken: 3600, RefreshToken: 14 * DAY, Interaction: 3600, Session: 14 * DAY, Grant: 14 * DAY },
  });
  const app = express();
  // the same session middleware ours needs, to tell its cost from op()'s own
  if (withSession) app.use(session({ secret: 'bench-session-secret-0123456789', resave: false, saveUninitialized: false }));
  app.use('/op', provider.callback());
  return { app, provider };
}

const VARIANTS = {
  ours: { label: '@openid-express/op', build: ours },
  bare: { label: 'bare oidc-provider in Express', build: bare },
  'ours-1k': { label: '@openid-express/op, memoryAdapter({ maxRecords: 1000 })', optIn: true, build: oursSmallStore },
  'ours-bare-account': { label: '@openid-express/op with bare\'s findAccount', optIn: true, build: oursBareAccount },
  // A/A check of a method (VARIANTS=bare-again): two identical OPs should measure 1.00×
  'bare-again': { label: 'bare oidc-provider in Express, again (a second, identical OP)', optIn: true, build: bare },
  'ours-callback': { label: 'op()\'s provider mounted as bare is (provider.callback(), no op() app in front)', optIn: true, build: oursCallback },
  // diagnostic: bare with op()'s record store (memoryAdapter()) in place of oidc-provider's own: what the store costs
  'bare-our-store': { label: 'bare oidc-provider in Express with op()\'s memoryAdapter()', optIn: true, build: (issuer, jwks) => bare(issuer, jwks, { ourStore: true }) },
  'bare+session': { label: 'bare oidc-provider behind express-session', build: (issuer, jwks) => bare(issuer, jwks, { withSession: true }) },
};

/** An access token for alice as an authorization-code login would leave it (userinfo needs a grant). */
async function accessTokenFor(provider) {
  const client = await provider.Client.find(APP.client_id);
  const grant = new provider.Grant({ clientId: client.clientId, accountId: ALICE.id });
  grant.addOIDCScope('openid profile email');
  const grantId = await grant.save();
  const token = new provider.AccessToken({ client, accountId: ALICE.id, grantId, gty: 'authorization_code', scope: 'openid profile email' });
  return token.save();
}

/** `n` authorization codes for alice (as her login would leave them), each good for one exchange by APP. */
async function codesFor(provider, n) {
  const client = await provider.Client.find(APP.client_id);
  const grant = new provider.Grant({ clientId: client.clientId, accountId: ALICE.id });
  grant.addOIDCScope('openid profile email');
  const grantId = await grant.save();
  return Promise.all(Array.from({ length: n }, () => new provider.AuthorizationCode({
    client, accountId: ALICE.id, grantId, scope: 'openid profile email', redirectUri: APP.redirect_uris[0], nonce: 'n', authTime: Math.floor(Date.now() / 1000),
  }).save()));
}

/** Child: one OP. argv: op <variant> <jwks JSON>. */
async function runOp(name, jwksJson) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const { app, provider } = await VARIANTS[name].build(`${origin}/op`, JSON.parse(jwksJson));
  server.on('request', app);
  // oidc-provider's own memory adapter keeps 1000 records: the token benchmark evicts older ones
  serveMessages({ gc: () => { globalThis.gc(); return true; }, cpu: () => cpuMicros(), accessToken: () => accessTokenFor(provider), codes: (m) => codesFor(provider, m.n) });
  process.send({ origin, accessToken: await accessTokenFor(provider) });
}

// ---------------------------------------------------------------- the load generator

/** The measured requests, by name. */
function endpoints(op) {
  const basic = `Basic ${Buffer.from(`${SERVICE.client_id}:${SERVICE.client_secret}`).toString('base64')}`;
  return {
    discovery: { url: `${op.origin}/op/.well-known/openid-configuration`, expectStatus: 200 },
    token: {
      url: `${op.origin}/op/token`, method: 'POST', expectStatus: 200,
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api%3Aread',
    },
    userinfo: { url: `${op.origin}/op/me`, headers: { authorization: `Bearer ${op.accessToken}` }, expectStatus: 200 },
    // the authorization-code exchange (ID token signed, grant checked); codes are single use, minted ahead
    code: {
      url: `${op.origin}/op/token`, method: 'POST', expectStatus: 200,
      headers: { authorization: `Basic ${Buffer.from(`${APP.client_id}:${APP.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      bodies: (op.codes ?? []).map((code) => `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(APP.redirect_uris[0])}`),
    },
  };
}

/** Checks each endpoint answers what a client expects before measuring it. */
async function check(op) {
  op.bytes = {};
  op.codes = await ask(op.child, { cmd: 'codes', n: 1 });
  for (const [what, e] of Object.entries(endpoints(op))) {
    const response = await fetch(e.url, { method: e.method ?? 'GET', headers: e.headers, body: e.body ?? e.bodies?.[0] });
    const text = await response.text();
    op.bytes[what] = Buffer.byteLength(text);
    const body = JSON.parse(text || '{}');
    const ok = response.status === e.expectStatus && (body.issuer || body.access_token || body.sub === ALICE.id) && (what !== 'code' || body.id_token);
    if (!ok) throw new Error(`${what} at ${e.url}: HTTP ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
  }
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a, b) => (Number.isFinite(a / b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '–');

async function main() {
  const started = Date.now();
  // VARIANTS=ours,ours-1k,bare picks the OPs, started and loaded in that order (ours and bare always
  // run: the ratios need them)
  const names = process.env.VARIANTS ? [...new Set([...process.env.VARIANTS.split(','), 'ours', 'bare'])] : Object.keys(VARIANTS).filter((n) => !VARIANTS[n].optIn);
  const only = process.env.ONLY?.split(',');
  console.log(`node ${process.version}, ${SECONDS} s per measurement, best of ${ROUNDS} ${PAIRED ? `paired rounds (every OP at once, ${PAIRED} req/s each)` : 'interleaved rounds'}, ${CONNECTIONS} connections`);
  const jwks = { keys: [signingKey()] };
  const ops = {};
  const results = {};
  /** CPU µs per request of every round, by endpoint and variant (round i of each ran next to the others). */
  const rounds = {};
  try {
    for (const name of names) {
      const dir = process.env.PROFILE?.split(',').includes(name) ? fileURLToPath(new URL(`profiles/op-${name}/`, import.meta.url)) : undefined;
      const { child, first } = await startChild(SCRIPT, ['op', name, JSON.stringify(jwks)], { profile: dir });
      ops[name] = { child, ...first };
      await check(ops[name]);
    }
    const whats = Object.keys(endpoints(ops.ours)).filter((w) => !only || only.includes(w));
    // the request of `what` at OP `name`; single-use codes are minted before each run, outside the
    // CPU count (oidc-provider's own store keeps 1000 records)
    const request = async (name, what) => {
      if (what === 'code') ops[name].codes = await ask(ops[name].child, { cmd: 'codes', n: CODES_AT_ONCE });
      return endpoints(ops[name])[what];
    };
    const keep = (what, name, result) => {
      ((rounds[what] ??= {})[name] ??= []).push(result.cpuUs);
      keepBest((results[what] ??= {}), name, result);
    };
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const what of whats) {
        if (what === 'userinfo') for (const name of names) ops[name].accessToken = await ask(ops[name].child, { cmd: 'accessToken' });
        if (PAIRED) {
          // every OP at once, at the same fixed rate, each one's CPU over the same seconds
          const load = async (seconds) => {
            const es = await Promise.all(names.map((name) => request(name, what)));
            return Promise.all(names.map((name, i) => withCpu(ops[name].child, () => hammer({ ...es[i], seconds, connections: CONNECTIONS, rate: PAIRED }))));
          };
          if (round === 0 || process.env.WARM_EACH === '1') await load(1);
          const measured = await load(SECONDS);
          names.forEach((name, i) => keep(what, name, measured[i]));
          continue;
        }
        // the order rotates round by round, so no variant always runs first (or right after another)
        for (const name of names.map((_, i) => names[(i + round) % names.length])) {
          if (round === 0) await hammer({ ...(await request(name, what)), seconds: 1, connections: CONNECTIONS });
          const e = await request(name, what);
          keep(what, name, await withCpu(ops[name].child, () => hammer({ ...e, seconds: SECONDS, connections: CONNECTIONS })));
        }
      }
      console.error(`round ${round + 1} done`);
    }
  } finally {
    await Promise.all(Object.values(ops).map((o) => stopChild(o.child)));
  }
  const others = names.filter((n) => n !== 'ours');
  console.log(`\nratios are ours / ${others.join(' and ours / ')}; CPU is the OP process's CPU time per request\n`);
  console.log(`| endpoint | ${names.map((n) => `${n} req/s`).join(' | ')} | ${names.map((n) => `${n} p50 / p99 ms`).join(' | ')} | ${names.map((n) => `${n} CPU µs/req`).join(' | ')} | ${others.map((n) => `ours / ${n} (req/s)`).join(' | ')} | ${others.map((n) => `ours / ${n} (CPU)`).join(' | ')} |`);
  console.log(`|---|${Array.from({ length: names.length * 3 + others.length * 2 }, () => '---:').join('|')}|`);
  for (const [what, r] of Object.entries(results)) {
    const cells = [
      ...names.map((n) => fmt(r[n].rps)), ...names.map((n) => `${r[n].p50} / ${r[n].p99}`), ...names.map((n) => fmt(r[n].cpuUs)),
      ...others.map((n) => ratio(r.ours.rps, r[n].rps)), ...others.map((n) => ratio(r.ours.cpuUs, r[n].cpuUs)),
    ];
    console.log(`| ${what} | ${cells.join(' | ')} |`);
  }
  console.log('\nCPU per request / bare\'s, round by round (the target is the median of ours):\n');
  console.log('| endpoint | variant | / bare per round | median |\n|---|---|---|---:|');
  const targets = []; // RATIOS_OUT: written for bench/repeat.mjs
  for (const [what, r] of Object.entries(rounds)) {
    for (const n of names.filter((x) => x !== 'bare')) {
      const per = r[n].map((c, i) => c / r.bare[i]);
      console.log(`| ${what} | ${n} | ${per.map((x) => x.toFixed(2)).join(' ')} | ${median(per).toFixed(2)}× |`);
      targets.push({ name: `${what}: ${n} / bare (CPU per request)${n === 'ours' ? '' : ' (diagnostic, not a target)'}`, ratios: per, limit: 1.05, cmp: '≤' });
    }
  }
  if (process.env.RATIOS_OUT) writeFileSync(process.env.RATIOS_OUT, JSON.stringify(targets));
  console.log('\nresponse body bytes: ' + names.map((n) => `${n} ${JSON.stringify(ops[n].bytes)}`).join('; '));
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

/** MEASURE=instructions: instructions per request of each OP under callgrind, rounds side by side. */
async function mainInstructions() {
  const started = Date.now();
  const names = process.env.VARIANTS?.split(',') ?? Object.keys(VARIANTS).filter((n) => !VARIANTS[n].optIn);
  const only = process.env.ONLY?.split(',');
  const warmup = Number(process.env.WARMUP ?? 3000);
  const count = Number(process.env.COUNT ?? 1500);
  const rewarm = Number(process.env.REWARM ?? 3000);
  const rounds = Number(process.env.ROUNDS ?? 2);
  const connections = Number(process.env.CONNECTIONS ?? 1);
  const cycles = process.env.CYCLES ? Number(process.env.CYCLES) : undefined;
  console.log(`node ${process.version}, instructions per request under callgrind: ${warmup} requests of warm-up; before each count a full GC and ${rewarm} requests; then ${cycles ? `${cycles} whole GC cycles` : count} counted, ${rounds} rounds, ${connections} connections`);
  const jwks = { keys: [signingKey()] };
  const ops = {};
  const counts = {};
  try {
    await Promise.all(names.map(async (name) => {
      const { child, first, callgrindDir } = await startChild(SCRIPT, ['op', name, JSON.stringify(jwks)], { callgrind: true });
      ops[name] = { child, callgrindDir, ...first };
      await check(ops[name]);
    }));
    const whats = Object.keys(endpoints(ops.ours)).filter((w) => !only || only.includes(w));
    for (let round = 0; round < rounds; round += 1) {
      for (const what of whats) {
        for (const name of names.map((_, i) => names[(i + round) % names.length])) {
          const o = ops[name];
          const request = async (n) => {
            if (what === 'userinfo') o.accessToken = await ask(o.child, { cmd: 'accessToken' });
            if (what === 'code') o.codes = await ask(o.child, { cmd: 'codes', n: Math.min(n, CODES_AT_ONCE) }, 600_000);
            return { ...endpoints(o)[what], seconds: 3600, connections, maxRequests: n };
          };
          if (round === 0) await hammer(await request(warmup));
          await ask(o.child, { cmd: 'gc' }); // a full collection before, not inside, the counted window
          // the forced GC deoptimises much of the hot path (its code had embedded objects of the warm-up's
          // connections, now dead); re-optimise it before counting, as a long-running server would have
          if (rewarm) await hammer(await request(rewarm));
          // minted after the re-warm: codes minted before it were evicted by its tokens from oidc-provider's store
          const e = await request(count);
          // `code`: more codes than CODES_AT_ONCE are counted in batches, with counting paused while
          // the next batch is minted
          const measure = what !== 'code' || count <= CODES_AT_ONCE ? () => hammer(e) : async () => {
            let requests = 0;
            for (let left = count; left > 0; left -= CODES_AT_ONCE) {
              if (left < count) await pausedWhile(o.child, async () => Object.assign(e, await request(left)));
              requests += (await hammer(e)).requests;
            }
            return { requests };
          };
          // CYCLES=k: the window spans k whole GC cycles instead of COUNT requests (not for `code`)
          const result = cycles && what !== 'code'
            ? await countInstructionsOverCycles(o.child, o.callgrindDir, (n) => hammer({ ...e, maxRequests: n }), { cycles })
            : await countInstructions(o.child, o.callgrindDir, measure);
          ((counts[what] ??= {})[name] ??= []).push(result.instructions);
          console.error(`${what} ${name} round ${round + 1}: ${Math.round(result.instructions)} instructions per request${result.majorGcs === undefined ? '' : ` (${result.requests} requests, ${result.majorGcs} mark-compacts)`}`);
        }
      }
    }
  } finally {
    await Promise.all(Object.values(ops).map((o) => stopChild(o.child)));
  }
  const others = names.filter((n) => n !== 'ours');
  const k = (n) => `${(n / 1000).toFixed(0)} k`;
  console.log(`\n| endpoint | ${names.map((n) => `${n} instructions/req (each round)`).join(' | ')} | ${others.map((n) => `ours / ${n} per round (median)`).join(' | ')} |`);
  console.log(`|---|${names.map(() => '---').join('|')}|${others.map(() => '---:').join('|')}|`);
  for (const [what, c] of Object.entries(counts)) {
    const per = (n) => c.ours.map((x, i) => x / c[n][i]);
    console.log(`| ${what} | ${names.map((n) => c[n].map(k).join(', ')).join(' | ')} | ${others.map((n) => `${per(n).map((x) => x.toFixed(3)).join(' ')} (${median(per(n)).toFixed(3)}×)`).join(' | ')} |`);
  }
  console.log(`\n(a round measures each variant once, one after the other; ${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

const [role, ...args] = process.argv.slice(2);
if (role === 'op') await runOp(...args);
else if (process.env.MEASURE === 'instructions') await mainInstructions();
else await main();
