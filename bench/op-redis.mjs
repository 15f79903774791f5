// @openid-express/op on `redisAdapter()` against a bare oidc-provider on oidc-provider's example Redis
// adapter (example/adapters/redis.js, ported to node-redis: what an app wiring oidc-provider to Redis by
// hand starts from), both on one redis-server of this script's own, both driven by real openid-client v6
// through whole code-flow logins (authorize → sign-in page → consent page → code exchange → userinfo):
//   1. CPU per login, refresh, userinfo and introspection, paired: in each round both OPs are given the
//      same work at the same moment (LOGINS logins, CALLS userinfo and introspection calls, CALLS / 2
//      refreshes each, CONCURRENCY at a time), each one's CPU measured over it, so that what else the
//      host runs weighs on both alike; the ours / bare ratio of each round, and their median;
//   2. login latency, one login at a time, the two OPs alternating (LATENCY_LOGINS each): p50;
//   3. Redis commands and round trips per login and per refresh, one OP at a time, one request at a time
//      (COUNTED of each): commands from INFO commandstats (those a Lua script or a MULTI runs counted
//      too), round trips as the writes its client sent through a counting proxy.
// Passwords: both compare the password as it is (op() with memoryAccounts() whose verifyPassword is
// replaced), so the login measures the OPs and not scrypt; SCRYPT=1 hashes on both, as memoryAccounts() does.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-redis.mjs
// Knobs (environment): ROUNDS=5, LOGINS=60, CALLS=300, CONCURRENCY=2, LATENCY_LOGINS=30, COUNTED=20,
// ONLY=login,refresh,userinfo,introspect,latency,commands (a subset of the parts), SCRYPT=1.
// REDIS_URL=redis://… uses that Redis instead of starting one (its other clients' commands then count
// too; this script's keys, prefixed bench-op-redis-<pid>-, are deleted at the end).
//
// Processes: this one drives both OPs (openid-client, fetch); each OP runs in its own child process.
import { scrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import Provider from 'oidc-provider';
import * as oc from 'openid-client';
import { createClient } from 'redis';
import { serveMessages, startChild, stopChild } from './lib/children.mjs';
import { Jar, locationOf, request } from './lib/http.mjs';
import { cpuMicros, withCpu } from './lib/load.mjs';
import { commandCalls, countingProxy, startRedis } from './lib/redis-server.mjs';
import { signingKey } from './lib/signing-key.mjs';
import { median } from './lib/stats.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const LOGINS = Number(process.env.LOGINS ?? 60);
const CALLS = Number(process.env.CALLS ?? 300);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 2);
const LATENCY_LOGINS = Number(process.env.LATENCY_LOGINS ?? 30);
const COUNTED = Number(process.env.COUNTED ?? 20);
const PARTS = ['login', 'refresh', 'userinfo', 'introspect', 'latency', 'commands'];
const ONLY = process.env.ONLY?.split(',') ?? PARTS;
const PREFIX = `bench-op-redis-${process.pid}-`;

const APP = { client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', 'refresh_token'] };
const ALICE = { id: 'alice', username: 'alice', password: 'wonderland-42', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } };
const COOKIE_KEYS = ['bench-cookie-key-0123456789abcdef'];
const DAY = 24 * 3600;

// ---------------------------------------------------------------- child processes

/** The password check of both OPs: as it is, or (SCRYPT=1) scrypt as memoryAccounts() hashes it. */
const SALT = randomBytes(16);
const hash = (password) => new Promise((resolve, reject) => scrypt(String(password).normalize('NFKC'), SALT, 32, (err, key) => (err ? reject(err) : resolve(key))));
const ALICE_HASH = process.env.SCRYPT === '1' ? hash(ALICE.password) : undefined;
async function passwordOk(login, password) {
  if (login !== ALICE.username) return false;
  return ALICE_HASH ? timingSafeEqual(await hash(password), await ALICE_HASH) : password === ALICE.password;
}

/** @openid-express/op as the README mounts it, on redisAdapter(). */
async function ours(issuer, jwks, redis, prefix) {
  const { op, memoryAccounts, redisAdapter } = await import('@openid-express/op');
  const accounts = memoryAccounts([ALICE]);
  // replaced in place: the store keeps the synchronous lookups op() answers userinfo with
  accounts.verifyPassword = async (login, password) => ((await passwordOk(login, password)) ? ALICE.id : undefined);
  const opApp = op({
    issuer, jwks, cookieKeys: COOKIE_KEYS, clients: [APP], accounts, adapter: redisAdapter(redis, { prefix }),
    session: session({ secret: 'bench-session-secret-0123456789', resave: false, saveUninitialized: false }),
  });
  const app = express();
  app.use('/op', opApp);
  return app;
}

/**
 * oidc-provider's example Redis adapter (example/adapters/redis.js, written for ioredis) on node-redis:
 * a record is one JSON string (a hash with a `payload` field for the consumable ones), a grant's tokens a
 * list, uid and user code an index key each, a TTL per key.
 */
function exampleRedisAdapter(client, prefix) {
  const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const grantKeyFor = (id) => `${prefix}grant:${id}`;
  const userCodeKeyFor = (userCode) => `${prefix}userCode:${userCode}`;
  const uidKeyFor = (uid) => `${prefix}uid:${uid}`;
  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${prefix}${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) multi.hSet(key, { payload: JSON.stringify(payload) });
      else multi.set(key, JSON.stringify(payload));
      if (expiresIn) multi.expire(key, expiresIn);
      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rPush(grantKey, key);
        // a grant lives as long as its longest-lived token
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
      }
      if (payload.userCode) {
        const userCodeKey = userCodeKeyFor(payload.userCode);
        multi.set(userCodeKey, id);
        multi.expire(userCodeKey, expiresIn);
      }
      if (payload.uid) {
        const uidKey = uidKeyFor(payload.uid);
        multi.set(uidKey, id);
        multi.expire(uidKey, expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      const data = consumable.has(this.name) ? await client.hGetAll(this.key(id)) : await client.get(this.key(id));
      if (!data || (typeof data === 'object' && !Object.keys(data).length)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload), ...(rest.consumed ? { consumed: Number(rest.consumed) } : {}) };
    }

    async findByUid(uid) {
      const id = await client.get(uidKeyFor(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(userCodeKeyFor(userCode));
      return id ? this.find(id) : undefined;
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      const tokens = await client.lRange(grantKeyFor(grantId), 0, -1);
      for (const token of tokens) multi.del(token);
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hSet(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  };
}

/**
 * oidc-provider as its documentation mounts it in Express, configured as op() configures it (the same
 * claims, features, response types and TTLs), with a sign-in and a consent page of its own.
 */
async function bare(issuer, jwks, redis, prefix) {
  const { SCOPE_CLAIMS } = await import('@openid-express/op');
  const provider = new Provider(issuer, {
    adapter: exampleRedisAdapter(redis, prefix),
    clients: [APP], jwks, cookies: { keys: COOKIE_KEYS },
    claims: { ...SCOPE_CLAIMS, openid: ['sub', 'acr', 'amr'], auth_time: null, sid: null },
    findAccount: (_ctx, id) => id === ALICE.id && { accountId: id, claims: () => ({ sub: id, ...ALICE.claims }) },
    interactions: { url: (_ctx, interaction) => `/op/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false }, introspection: { enabled: true }, revocation: { enabled: true },
      pushedAuthorizationRequests: { enabled: true }, requestObjects: { enabled: true }, dPoP: { enabled: true },
      backchannelLogout: { enabled: true }, claimsParameter: { enabled: true }, rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    responseTypes: ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token', 'none'],
    allowOmittingSingleRegisteredRedirectUri: false,
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 14 * DAY, Interaction: 3600, Session: 14 * DAY, Grant: 14 * DAY },
  });
  const app = express();
  const form = express.urlencoded({ extended: false });
  const page = (title, action, fields) => `<!doctype html><title>${title}</title><form method="post" action="${action}">${fields}<button>Go</button></form>`;
  app.get('/op/interaction/:uid', async (req, res, next) => {
    try {
      const { uid, prompt } = await provider.interactionDetails(req, res);
      if (prompt.name === 'login') res.type('html').send(page('Sign in', `/op/interaction/${uid}/login`, '<input name="login"><input name="password" type="password">'));
      else res.type('html').send(page('Allow access?', `/op/interaction/${uid}/confirm`, ''));
    } catch (err) {
      next(err);
    }
  });
  app.post('/op/interaction/:uid/login', form, async (req, res, next) => {
    try {
      await provider.interactionDetails(req, res);
      if (!(await passwordOk(req.body.login, req.body.password))) return res.status(401).send('wrong login or password');
      await provider.interactionFinished(req, res, { login: { accountId: ALICE.id } }, { mergeWithLastSubmission: false });
    } catch (err) {
      next(err);
    }
  });
  app.post('/op/interaction/:uid/confirm', form, async (req, res, next) => {
    try {
      const { prompt: { details }, params, session: { accountId }, grantId: existing } = await provider.interactionDetails(req, res);
      const grant = existing ? await provider.Grant.find(existing) : new provider.Grant({ accountId, clientId: params.client_id });
      if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
      if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: existing ? {} : { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      next(err);
    }
  });
  app.use('/op', provider.callback());
  return app;
}

const VARIANTS = { ours, bare };

/** Child: one OP. argv: op <variant> <redis URL> <key prefix> <jwks JSON>. */
async function runOp(name, redisUrl, prefix, jwksJson) {
  const redis = await createClient({ url: redisUrl }).on('error', () => {}).connect();
  const server = createServer({ keepAliveTimeout: 30_000 });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}/op`;
  server.on('request', await VARIANTS[name](issuer, JSON.parse(jwksJson), redis, prefix));
  serveMessages({ cpu: () => cpuMicros() });
  process.send({ issuer });
}

// ---------------------------------------------------------------- the driver

/** Starts OP `name` on the Redis at `redisUrl`, with openid-client's configuration for APP. */
async function startOp(name, redisUrl, jwks) {
  const { child, first } = await startChild(SCRIPT, ['op', name, redisUrl, `${PREFIX}${name}:`, JSON.stringify(jwks)]);
  const config = await oc.discovery(new URL(first.issuer), APP.client_id, APP.client_secret, undefined, { execute: [oc.allowInsecureRequests] });
  return { name, child, config, origin: new URL(first.issuer).origin };
}

/** A form's attribute or hidden field on an HTML page (entities as op()'s views escape them). */
const field = (html, re) => html.match(re)?.[1].replace(/&amp;/g, '&');

/**
 * One whole login of a new browser as alice with consent asked (offline_access): authorize, the OP's
 * sign-in and consent pages, the code exchange (ID token checked) and userinfo. Resolves with the tokens.
 */
async function login(op) {
  const jar = new Jar();
  const html = { accept: 'text/html' };
  const verifier = oc.randomPKCECodeVerifier();
  const state = oc.randomState();
  const nonce = oc.randomNonce();
  const url = oc.buildAuthorizationUrl(op.config, {
    redirect_uri: APP.redirect_uris[0], scope: 'openid profile email offline_access', prompt: 'consent', state, nonce,
    code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  let next = await locationOf(await request(jar, url.href, { headers: html }), `${op.name} authorize`);
  for (let hop = 0; !next.href.startsWith(APP.redirect_uris[0]); hop += 1) {
    if (hop > 12) throw new Error(`${op.name}: too many redirects at the OP`);
    const response = await request(jar, next.href, { headers: html });
    if (response.status >= 300 && response.status < 400) {
      next = await locationOf(response, `${op.name} ${next.pathname}`);
      continue;
    }
    const page = await response.text();
    if (response.status !== 200) throw new Error(`${op.name} ${next.pathname}: HTTP ${response.status}: ${page.slice(0, 300)}`);
    const action = field(page, /<form[^>]*action="([^"]+\/(?:login|confirm))"/);
    if (!action) throw new Error(`${op.name} ${next.pathname}: no sign-in or consent form on the page: ${page.slice(0, 300)}`);
    const form = new URLSearchParams();
    const csrf = field(page, /name="csrf" value="([^"]*)"/);
    if (csrf) form.set('csrf', csrf);
    if (action.endsWith('/login')) {
      form.set('login', ALICE.username);
      form.set('password', ALICE.password);
      const authenticator = field(page, /name="authenticator" value="([^"]*)"/);
      if (authenticator) form.set('authenticator', authenticator);
    }
    const posted = await request(jar, new URL(action, op.origin).href, { method: 'POST', headers: { ...html, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    next = await locationOf(posted, `${op.name} POST ${action}`);
  }
  const tokens = await oc.authorizationCodeGrant(op.config, next, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  await oc.fetchUserInfo(op.config, tokens.access_token, tokens.claims().sub);
  return tokens;
}

/** What each part does once, at OP `op` (whose latest login's tokens are `op.tokens`), and how many per round. */
const WORK = {
  login: { n: LOGINS, run: async (op) => { op.tokens = await login(op); } },
  refresh: { n: Math.round(CALLS / 2), run: (op) => oc.refreshTokenGrant(op.config, op.tokens.refresh_token) },
  userinfo: { n: CALLS, run: (op) => oc.fetchUserInfo(op.config, op.tokens.access_token, op.tokens.claims().sub) },
  introspect: {
    n: CALLS,
    run: async (op) => {
      const answer = await oc.tokenIntrospection(op.config, op.tokens.access_token);
      if (!answer.active) throw new Error(`${op.name}: introspection says a live access token is not active`);
    },
  },
};

/** `n` runs of `run(op)`, CONCURRENCY at a time; { requests, p50 } (ms). */
async function repeat(op, n, run) {
  const durations = [];
  let started = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (started < n) {
      started += 1;
      const t0 = performance.now();
      await run(op);
      durations.push(performance.now() - t0);
    }
  }));
  return { requests: n, p50: median(durations) };
}

/** Part 1: CPU per operation of each OP, both loaded at once, round by round. */
async function cpuRounds(ops, whats) {
  const rounds = {};
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const what of whats) {
      const { n, run } = WORK[what];
      const measured = await Promise.all(ops.map((op) => withCpu(op.child, () => repeat(op, n, run))));
      ops.forEach((op, i) => {
        const kept = ((rounds[what] ??= {})[op.name] ??= { cpuUs: [], p50: [] });
        kept.cpuUs.push(measured[i].cpuUs);
        kept.p50.push(measured[i].p50);
      });
    }
    console.error(`round ${round + 1} done`);
  }
  console.log(`\nCPU per operation (the OP process's), ${ROUNDS} paired rounds; p50 is the latency under that load:\n`);
  console.log('| operation | ours CPU µs | bare CPU µs | ours p50 ms | bare p50 ms | ours / bare per round | median |\n|---|---:|---:|---:|---:|---|---:|');
  for (const [what, r] of Object.entries(rounds)) {
    const per = r.ours.cpuUs.map((c, i) => c / r.bare.cpuUs[i]);
    console.log(`| ${what} | ${median(r.ours.cpuUs).toFixed(0)} | ${median(r.bare.cpuUs).toFixed(0)} | ${median(r.ours.p50).toFixed(1)} | ${median(r.bare.p50).toFixed(1)} | ${per.map((x) => x.toFixed(2)).join(' ')} | ${median(per).toFixed(2)}× |`);
  }
}

/** Part 2: login latency, one at a time, the OPs alternating. */
async function latency(ops) {
  const durations = {};
  for (let i = 0; i < LATENCY_LOGINS; i += 1) {
    for (const op of ops) {
      const t0 = performance.now();
      op.tokens = await login(op);
      (durations[op.name] ??= []).push(performance.now() - t0);
    }
  }
  const p50 = (name) => median(durations[name]);
  console.log(`\nLogin latency, one at a time, the OPs alternating (${LATENCY_LOGINS} each):\n`);
  console.log(`| ours p50 ms | bare p50 ms | ours / bare |\n|---:|---:|---:|\n| ${p50('ours').toFixed(1)} | ${p50('bare').toFixed(1)} | ${(p50('ours') / p50('bare')).toFixed(2)}× |`);
}

/** Part 3: Redis commands and round trips per login and per refresh, each OP alone, through a counting proxy. */
async function commands(redisUrl, jwks, stats) {
  const counted = {};
  for (const name of Object.keys(VARIANTS)) {
    const proxy = await countingProxy(redisUrl);
    const op = await startOp(name, proxy.url, jwks);
    try {
      op.tokens = await login(op); // warm: scripts loaded, connections open
      for (const what of ['login', 'refresh']) {
        const calls0 = await commandCalls(stats);
        const writes0 = proxy.counter.writes;
        for (let i = 0; i < COUNTED; i += 1) await WORK[what].run(op);
        const writes = proxy.counter.writes - writes0;
        const calls1 = await commandCalls(stats);
        const byCommand = Object.fromEntries(Object.entries(calls1).map(([k, v]) => [k, (v - (calls0[k] ?? 0)) / COUNTED]).filter(([, v]) => v > 0));
        const total = Object.values(byCommand).reduce((a, b) => a + b, 0);
        (counted[what] ??= {})[name] = { total, roundTrips: writes / COUNTED, byCommand };
      }
    } finally {
      await stopChild(op.child);
      proxy.close();
    }
  }
  console.log(`\nRedis work per operation, one request at a time (${COUNTED} of each; commands a script or MULTI runs included):\n`);
  console.log('| operation | ours commands | bare commands | ours / bare | ours round trips | bare round trips | ours / bare |\n|---|---:|---:|---:|---:|---:|---:|');
  for (const [what, c] of Object.entries(counted)) {
    console.log(`| ${what} | ${c.ours.total.toFixed(1)} | ${c.bare.total.toFixed(1)} | ${(c.ours.total / c.bare.total).toFixed(2)}× | ${c.ours.roundTrips.toFixed(1)} | ${c.bare.roundTrips.toFixed(1)} | ${(c.ours.roundTrips / c.bare.roundTrips).toFixed(2)}× |`);
  }
  const list = (byCommand) => Object.entries(byCommand).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${+v.toFixed(1)}`).join(', ');
  console.log('\nby command, per operation:\n');
  for (const [what, c] of Object.entries(counted)) for (const name of Object.keys(c)) console.log(`- ${what}, ${name}: ${list(c[name].byCommand)}`);
}

async function main() {
  const started = Date.now();
  const redisServer = await startRedis();
  const stats = await createClient({ url: redisServer.url }).connect();
  const jwks = { keys: [signingKey()] };
  const version = /redis_version:(\S+)/.exec(await stats.info('server'))?.[1];
  console.log(`node ${process.version}, redis-server ${version}, ${ROUNDS} rounds of ${LOGINS} logins, ${CALLS} userinfo and introspection calls, ${Math.round(CALLS / 2)} refreshes per OP, ${CONCURRENCY} at a time; passwords ${process.env.SCRYPT === '1' ? 'hashed with scrypt' : 'compared as they are'}`);
  try {
    const whats = Object.keys(WORK).filter((w) => ONLY.includes(w));
    if (whats.length || ONLY.includes('latency')) {
      const ops = [];
      try {
        for (const name of Object.keys(VARIANTS)) ops.push(await startOp(name, redisServer.url, jwks));
        // warm-up: every path compiled, the Redis connections and scripts ready
        for (let i = 0; i < 15; i += 1) for (const op of ops) op.tokens = await login(op);
        if (ONLY.includes('latency')) await latency(ops);
        if (whats.length) await cpuRounds(ops, whats);
      } finally {
        await Promise.all(ops.map((op) => stopChild(op.child)));
      }
    }
    if (ONLY.includes('commands')) await commands(redisServer.url, jwks, stats);
  } finally {
    // only this script's keys go: REDIS_URL may point at a Redis that holds other data
    for await (const keys of stats.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 })) if (keys.length) await stats.del(keys);
    stats.destroy();
    redisServer.stop();
  }
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

const [role, ...args] = process.argv.slice(2);
if (role === 'op') await runOp(...args);
else await main();
