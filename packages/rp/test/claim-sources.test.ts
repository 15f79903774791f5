/**
 * Aggregated and distributed claims (OpenID Connect Core 1.0 §5.6.2; certification tests
 * rp-claims-aggregated and rp-claims-distributed), against real Claims Providers on 127.0.0.1:
 * discovery, JWKS and a distributed endpoint that checks its bearer token.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { format } from 'node:util';
import createDebug from 'debug';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import * as jose from 'jose';
import { issuerKeys, resolveClaimSources } from '../src/claim-sources.js';
import { startOp } from './support/oidc-provider.js';
import { close, listen } from './support/rp-app.js';

/** Loopback test servers: both opt-ins are needed (and tested below as refusals without them). */
const dev = { allowInsecureRequests: true, allowPrivateNetwork: true };
const ACCESS_TOKEN = 'at-for-the-claims-provider-7f3a';

interface ClaimsProvider {
  issuer: string;
  kid: string;
  publicJwk: jose.JWK;
  /** `METHOD /path` of every request received. */
  requests: string[];
  /** The Authorization header of every request to /claims (undefined when absent). */
  authorizations: (string | undefined)[];
  sign(payload: jose.JWTPayload, opts?: { iss?: string; key?: CryptoKey; kid?: string; exp?: number }): Promise<string>;
  close(): Promise<void>;
}

async function startProvider(opts: { discoveryIssuer?: (issuer: string) => string } = {}): Promise<ClaimsProvider> {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const kid = `k-${Math.random().toString(36).slice(2)}`;
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const requests: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const app = express();
  let issuer = '';
  const sign: ClaimsProvider['sign'] = async (payload, o = {}) => {
    const jwt = new jose.SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: o.kid ?? kid }).setIssuer(o.iss ?? issuer).setIssuedAt();
    if (o.exp !== undefined) jwt.setExpirationTime(o.exp);
    return jwt.sign(o.key ?? privateKey);
  };
  app.use((req, _res, next) => {
    requests.push(`${req.method} ${req.path}`);
    next();
  });
  app.get('/.well-known/openid-configuration', (_req, res) => {
    res.json({ issuer: opts.discoveryIssuer ? opts.discoveryIssuer(issuer) : issuer, jwks_uri: `${issuer}/jwks` });
  });
  app.get('/jwks', (_req, res) => res.json({ keys: [publicJwk] }));
  app.get('/claims', async (req, res) => {
    authorizations.push(req.headers.authorization);
    if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) return void res.status(401).set('www-authenticate', 'Bearer error="invalid_token"').end();
    res.type('application/jwt').send(await sign({ shoe_size: 8, eye_color: 'blue', payment_info: 'Visa 1234' }));
  });
  app.get('/claims-500', (_req, res) => void res.status(500).send('oops'));
  app.get('/claims-json', (_req, res) => void res.json({ shoe_size: 8 }));
  app.get('/claims-redirect', (_req, res) => void res.redirect(302, '/claims'));
  app.get('/claims-big', async (req, res) => {
    const jwt = await sign({ shoe_size: 8, padding: 'x'.repeat(Number(req.query.size)) });
    if (!req.query.chunked) return void res.type('application/jwt').send(jwt); // with Content-Length
    res.type('application/jwt'); // chunked: no Content-Length, only counting the bytes can refuse it
    for (let i = 0; i < jwt.length; i += 8192) res.write(jwt.slice(i, i + 8192));
    res.end();
  });
  app.get('/claims-hang', () => undefined); // never answers
  app.get('/claims-drip', (_req, res) => {
    res.type('application/jwt').write('eyJhbGciOiJFUzI1NiJ9.'); // headers and a first chunk, then nothing
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer, kid, publicJwk, requests, authorizations, sign,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** base64url JSON */
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

let a: ClaimsProvider;
let b: ClaimsProvider;
let liar: ClaimsProvider; // its discovery document names another issuer
let closedPort: number;

beforeAll(async () => {
  [a, b, liar] = await Promise.all([startProvider(), startProvider(), startProvider({ discoveryIssuer: () => 'https://elsewhere.example' })]);
  const s = express().listen(0, '127.0.0.1');
  await new Promise((resolve) => s.once('listening', resolve));
  closedPort = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
});
afterAll(() => Promise.all([a.close(), b.close(), liar.close()]));
beforeEach(() => {
  for (const p of [a, b, liar]) {
    p.requests.length = 0;
    p.authorizations.length = 0;
  }
});

describe('aggregated claims', () => {
  test('rp-claims-aggregated: claims named in _claim_names are taken from the verified JWT, the markers are removed', async () => {
    const jwt = await a.sign({ shoe_size: 8, eye_color: 'blue', not_named: 'ignored' });
    const claims = await resolveClaimSources({
      sub: 'alice', name: 'Alice', email: 'alice@example.org',
      _claim_names: { shoe_size: 'src1', eye_color: 'src1' },
      _claim_sources: { src1: { JWT: jwt } },
    }, { ...dev, keys: issuerKeys(dev) });
    expect(claims).toEqual({ sub: 'alice', name: 'Alice', email: 'alice@example.org', shoe_size: 8, eye_color: 'blue' });
    // the keys were found by discovery of the JWT's iss
    expect(a.requests).toEqual(['GET /.well-known/openid-configuration', 'GET /jwks']);
  });

  test('an aggregated JWT with a bad signature loses its claims; the other sources and the unnamed claims are kept', async () => {
    const { privateKey: forger } = await jose.generateKeyPair('ES256');
    const forged = await a.sign({ role: 'admin' }, { key: forger }); // a's iss and kid, another key
    const genuine = await b.sign({ shoe_size: 8 });
    const claims = await resolveClaimSources({
      sub: 'alice', name: 'Alice', role: 'user',
      _claim_names: { role: 'forged', shoe_size: 'genuine' },
      _claim_sources: { forged: { JWT: forged }, genuine: { JWT: genuine } },
    }, dev);
    expect(claims).toEqual({ sub: 'alice', name: 'Alice', shoe_size: 8 });
  });

  test('a tampered payload (signature of another payload) is dropped', async () => {
    const jwt = await a.sign({ role: 'user' });
    const [h, , s] = jwt.split('.');
    const tampered = `${h}.${b64({ iss: a.issuer, role: 'admin' })}.${s}`;
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { role: 'src1' }, _claim_sources: { src1: { JWT: tampered } } }, dev);
    expect(claims).toEqual({ sub: 'alice' });
  });

  test('alg none and HMAC are refused before any key is fetched', async () => {
    const fetched: string[] = [];
    const none = `${b64({ alg: 'none' })}.${b64({ iss: a.issuer, role: 'admin' })}.`;
    const hs256 = await new jose.SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(a.issuer)
      .sign(new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!'));
    const good = await a.sign({ shoe_size: 8 });
    const claims = await resolveClaimSources({
      sub: 'alice',
      _claim_names: { role: 'none', level: 'hmac', shoe_size: 'good' },
      _claim_sources: { none: { JWT: none }, hmac: { JWT: hs256 }, good: { JWT: good } },
    }, { ...dev, keys: async (iss) => {
      fetched.push(iss);
      return jose.createLocalJWKSet({ keys: [a.publicJwk] });
    } });
    expect(claims).toEqual({ sub: 'alice', shoe_size: 8 });
    expect(fetched).toEqual([a.issuer]); // only for the ES256 one
  });

  test('an expired claims JWT is dropped', async () => {
    const jwt = await a.sign({ shoe_size: 8 }, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, dev);
    expect(claims).toEqual({ sub: 'alice' });
  });

  test('onDropped hears of each dropped source, and an expired or not-yet-valid JWT is put down to its age or the clocks', async () => {
    const now = Math.floor(Date.now() / 1000);
    const dropped: [string, string[], string][] = [];
    const claims = await resolveClaimSources({
      sub: 'alice',
      _claim_names: { shoe_size: 'old', hat_size: 'old', eye_color: 'early', nickname: 'ok', role: 'e500' },
      _claim_sources: {
        old: { JWT: await a.sign({ shoe_size: 8, hat_size: 7 }, { exp: now - 31 }) }, // just past the 30 s tolerated
        early: { JWT: await a.sign({ eye_color: 'blue', nbf: now + 60 }) },
        ok: { JWT: await a.sign({ nickname: 'Al' }, { exp: now - 20 }) }, // within the 30 s: kept
        e500: { endpoint: `${a.issuer}/claims-500` },
      },
    }, { ...dev, onDropped: (source, names, reason) => void dropped.push([source, names, reason]) });
    expect(claims).toEqual({ sub: 'alice', nickname: 'Al' });
    expect(dropped.map(([source, names]) => [source, names]).sort()).toEqual([['e500', ['role']], ['early', ['eye_color']], ['old', ['shoe_size', 'hat_size']]]);
    const why = Object.fromEntries(dropped.map(([source, , reason]) => [source, reason]));
    expect(why.old).toBe(`its JWT from ${a.issuer} is expired ("exp" claim, 30 s tolerated): the JWT is stale, or the clocks of this server `
      + `and the Claims Provider ${a.issuer} differ; keep both in time (NTP)`);
    expect(why.early).toContain(`is not valid yet ("nbf" claim, 30 s tolerated): the JWT is stale, or the clocks of this server and the Claims Provider ${a.issuer} differ`);
    expect(why.e500).toBe('the endpoint answered HTTP 500'); // not a clock matter
  });

  test('the keys function supplied by the caller is used (no discovery)', async () => {
    const calls: string[] = [];
    const jwt = await a.sign({ shoe_size: 8 }, { iss: 'https://claims.example' });
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, {
      keys: (iss) => {
        calls.push(iss);
        return jose.createLocalJWKSet({ keys: [a.publicJwk] });
      },
    });
    expect(claims).toEqual({ sub: 'alice', shoe_size: 8 });
    expect(calls).toEqual(['https://claims.example']);
    expect(a.requests).toEqual([]);
  });

  test('acceptIssuer can refuse a claims issuer before any request', async () => {
    const jwt = await a.sign({ shoe_size: 8 });
    const seen: [string, string][] = [];
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, {
      ...dev, acceptIssuer: (iss, source) => (seen.push([iss, source]), false),
    });
    expect(claims).toEqual({ sub: 'alice' });
    expect(seen).toEqual([[a.issuer, 'src1']]);
    expect(a.requests).toEqual([]);
  });
});

describe('distributed claims', () => {
  test('rp-claims-distributed: the endpoint is called with the access token as Bearer and its JWT is verified', async () => {
    const claims = await resolveClaimSources({
      sub: 'alice', name: 'Alice',
      _claim_names: { shoe_size: 'src1', payment_info: 'src1' },
      _claim_sources: { src1: { endpoint: `${a.issuer}/claims`, access_token: ACCESS_TOKEN } },
    }, { ...dev, keys: issuerKeys(dev) });
    expect(claims).toEqual({ sub: 'alice', name: 'Alice', shoe_size: 8, payment_info: 'Visa 1234' });
    expect(a.authorizations).toEqual([`Bearer ${ACCESS_TOKEN}`]);
    expect(a.requests).toEqual(['GET /claims', 'GET /.well-known/openid-configuration', 'GET /jwks']);
  });

  test('without access_token no Authorization header is sent (here the endpoint refuses: claims dropped)', async () => {
    const claims = await resolveClaimSources({
      sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { endpoint: `${a.issuer}/claims` } },
    }, dev);
    expect(claims).toEqual({ sub: 'alice' });
    expect(a.authorizations).toEqual([undefined]);
  });

  test('accessTokenFor supplies a pre-negotiated token for a source without access_token', async () => {
    const asked: [string, string][] = [];
    const claims = await resolveClaimSources({
      sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { endpoint: `${a.issuer}/claims` } },
    }, { ...dev, accessTokenFor: (source, endpoint) => (asked.push([source, endpoint]), ACCESS_TOKEN) });
    expect(claims).toEqual({ sub: 'alice', shoe_size: 8 });
    expect(asked).toEqual([['src1', `${a.issuer}/claims`]]);
    expect(a.authorizations).toEqual([`Bearer ${ACCESS_TOKEN}`]);
  });

  test('endpoint down, HTTP 500, hanging, dripping: dropped, the rest kept, and the call resolves in bounded time', async () => {
    const good = await b.sign({ shoe_size: 8 });
    const started = Date.now();
    const claims = await resolveClaimSources({
      sub: 'alice', name: 'Alice',
      _claim_names: { c_down: 'down', c_500: 'e500', c_hang: 'hang', c_drip: 'drip', shoe_size: 'good' },
      _claim_sources: {
        down: { endpoint: `http://127.0.0.1:${closedPort}/claims`, access_token: ACCESS_TOKEN },
        e500: { endpoint: `${a.issuer}/claims-500`, access_token: ACCESS_TOKEN },
        hang: { endpoint: `${a.issuer}/claims-hang`, access_token: ACCESS_TOKEN },
        drip: { endpoint: `${a.issuer}/claims-drip`, access_token: ACCESS_TOKEN },
        good: { JWT: good },
      },
    }, { ...dev, timeoutMs: 400 });
    const elapsed = Date.now() - started;
    expect(claims).toEqual({ sub: 'alice', name: 'Alice', shoe_size: 8 });
    expect(elapsed).toBeLessThan(2000);
    expect(a.requests).toEqual(expect.arrayContaining(['GET /claims-500', 'GET /claims-hang', 'GET /claims-drip']));
  });

  test('a JSON answer is refused (a claims source returns a JWT), even with the right values', async () => {
    const claims = await resolveClaimSources({
      sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { endpoint: `${a.issuer}/claims-json` } },
    }, dev);
    expect(claims).toEqual({ sub: 'alice' });
    expect(a.requests).toEqual(['GET /claims-json']);
  });

  test('redirects are not followed', async () => {
    const claims = await resolveClaimSources({
      sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { endpoint: `${a.issuer}/claims-redirect`, access_token: ACCESS_TOKEN } },
    }, dev);
    expect(claims).toEqual({ sub: 'alice' });
    expect(a.requests).toEqual(['GET /claims-redirect']);
  });

  test.each(['declared', 'chunked'])('a response larger than maxResponseBytes (64 KiB by default) is refused (%s length)', async (kind) => {
    const endpoint = `${a.issuer}/claims-big?size=100000${kind === 'chunked' ? '&chunked=1' : ''}`;
    const source = { _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { endpoint } } };
    expect(await resolveClaimSources({ sub: 'alice', ...source }, dev)).toEqual({ sub: 'alice' });
    // the same answer under a larger cap verifies: the size is what refused it
    expect(await resolveClaimSources({ sub: 'alice', ...source }, { ...dev, maxResponseBytes: 200_000 })).toEqual({ sub: 'alice', shoe_size: 8 });
  });
});

describe('which keys: the JWT\'s iss decides, and only public https issuers are contacted', () => {
  test('a JWT claiming issuer B but signed with A\'s key is dropped (B\'s keys are fetched, A is not asked)', async () => {
    const jwt = await a.sign({ role: 'admin' }, { iss: b.issuer }); // A's kid, A's key
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { role: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, { ...dev, keys: issuerKeys(dev) });
    expect(claims).toEqual({ sub: 'alice' });
    expect(b.requests).toContain('GET /jwks');
    expect(a.requests).toEqual([]);
  });

  test('an issuer whose discovery document names another issuer gives no keys', async () => {
    const jwt = await liar.sign({ role: 'admin' });
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { role: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, { ...dev, keys: issuerKeys(dev) });
    expect(claims).toEqual({ sub: 'alice' });
    expect(liar.requests).toEqual(['GET /.well-known/openid-configuration']);
  });

  test('by default a loopback iss is refused before any request (SSRF), for aggregated and distributed sources', async () => {
    const jwt = await a.sign({ shoe_size: 8 });
    const local = `http://localhost:${new URL(a.issuer).port}`;
    const claims = await resolveClaimSources({
      sub: 'alice',
      _claim_names: { shoe_size: 'agg', eye_color: 'dist', payment_info: 'byName' },
      _claim_sources: {
        agg: { JWT: jwt },
        dist: { endpoint: `${a.issuer}/claims`, access_token: ACCESS_TOKEN },
        byName: { endpoint: `${local}/claims`, access_token: ACCESS_TOKEN },
      },
    }, { allowInsecureRequests: true });
    expect(claims).toEqual({ sub: 'alice' });
    expect(a.requests).toEqual([]);
    // control: the same sources with the opt-in are resolved
    const allowed = await resolveClaimSources({
      sub: 'alice', _claim_names: { shoe_size: 'agg' }, _claim_sources: { agg: { JWT: jwt } },
    }, { allowInsecureRequests: true, allowPrivateNetwork: true });
    expect(allowed).toEqual({ sub: 'alice', shoe_size: 8 });
  });

  test('http issuers and endpoints are refused without allowInsecureRequests, before any request', async () => {
    const jwt = await a.sign({ shoe_size: 8 });
    const claims = await resolveClaimSources({
      sub: 'alice',
      _claim_names: { shoe_size: 'agg', eye_color: 'dist' },
      _claim_sources: { agg: { JWT: jwt }, dist: { endpoint: `${a.issuer}/claims`, access_token: ACCESS_TOKEN } },
    }, { allowPrivateNetwork: true });
    expect(claims).toEqual({ sub: 'alice' });
    expect(a.requests).toEqual([]);
  });
});

describe('rp(): a source that fails every sign-in is told to the operator', () => {
  test('a login whose aggregated claim is expired signs in without it, and rp() warns once, naming the provider, the source and the clocks', async () => {
    const server = createServer();
    const baseURL = await listen(server);
    const stale = await a.sign({ groups: ['admins'] }, { exp: Math.floor(Date.now() / 1000) - 40 });
    const op = await startOp({
      clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: [`${baseURL}/auth/callback/corp`], grant_types: ['authorization_code'] }],
      accounts: { alice: { name: 'Alice', _claim_names: { groups: 'src1' }, _claim_sources: { src1: { JWT: stale } } } },
    });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL, providers: { corp: oidc({ issuer: op.issuer, clientId: 'app', clientSecret: 'app-secret-that-is-long-enough-0123456789', allowInsecureRequests: true }) } }));
      app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user!.claims));
      server.on('request', app);
      for (let i = 0; i < 2; i++) {
        const agent = request.agent(server);
        const cb = await op.authorize(new URL((await agent.get('/auth/login/corp')).headers.location as string));
        await agent.get(cb.pathname + cb.search).expect(302);
        const me = (await agent.get('/me').expect(200)).body as Record<string, unknown>;
        expect(me).toMatchObject({ sub: 'alice', name: 'Alice' });
        expect(me.groups).toBeUndefined();
        expect(me._claim_names).toBeUndefined();
      }
      const said = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('src1'));
      expect(said).toEqual([`[@openid-express/rp] provider "corp": groups left out of the user's claims, as the claims source "src1" holding them (OIDC Core §5.6.2) `
        + `failed: its JWT from ${a.issuer} is expired ("exp" claim, 30 s tolerated): the JWT is stale, or the clocks of this server and the Claims Provider `
        + `${a.issuer} differ; keep both in time (NTP) (said at most once an hour)`]);
    } finally {
      warn.mockRestore();
      await close(server);
      await op.close();
    }
  });
});

describe('the claims object', () => {
  test('without _claim_names / _claim_sources the object is returned untouched', async () => {
    const claims = { sub: 'alice', name: 'Alice', nested: { a: 1 } };
    await expect(resolveClaimSources(claims, dev)).resolves.toBe(claims);
  });

  test('_claim_names pointing at a missing source is ignored (that claim dropped), everything else untouched', async () => {
    const jwt = await a.sign({ shoe_size: 8 });
    const claims = await resolveClaimSources({
      sub: 'alice', name: 'Alice', groups: ['a', 'b'], eye_color: 'from the OP',
      _claim_names: { eye_color: 'nowhere', shoe_size: 'src1' },
      _claim_sources: { src1: { JWT: jwt }, unused: { endpoint: `${a.issuer}/claims`, access_token: ACCESS_TOKEN } },
    }, dev);
    expect(claims).toEqual({ sub: 'alice', name: 'Alice', groups: ['a', 'b'], shoe_size: 8 });
    expect(a.requests).not.toContain('GET /claims'); // a source no claim names is not fetched
  });

  test('a claim the source does not hold is dropped', async () => {
    const jwt = await a.sign({ shoe_size: 8 });
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: { shoe_size: 'src1', hat_size: 'src1' }, _claim_sources: { src1: { JWT: jwt } } }, dev);
    expect(claims).toEqual({ sub: 'alice', shoe_size: 8 });
  });

  test('a source never replaces sub or a protocol claim, nor pollutes the prototype', async () => {
    const payload = JSON.parse('{"sub":"mallory","iss":"x","nickname":"al","__proto__":{"polluted":true}}') as jose.JWTPayload;
    const jwt = await a.sign(payload);
    const claims = await resolveClaimSources(JSON.parse(
      `{"sub":"alice","_claim_names":{"sub":"src1","nickname":"src1","__proto__":"src1"},"_claim_sources":{"src1":{"JWT":"${jwt}"}}}`,
    ) as Record<string, unknown>, dev);
    expect(claims).toEqual({ sub: 'alice', nickname: 'al' });
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
    expect((claims as { polluted?: unknown }).polluted).toBeUndefined();
  });

  test('malformed markers are removed and nothing is fetched', async () => {
    await expect(resolveClaimSources({ sub: 'alice', _claim_names: 'src1', _claim_sources: [] }, dev)).resolves.toEqual({ sub: 'alice' });
    await expect(resolveClaimSources({ sub: 'alice', _claim_names: { x: 'src1' }, _claim_sources: { src1: 'nope' } }, dev)).resolves.toEqual({ sub: 'alice' });
    await expect(resolveClaimSources({ sub: 'alice', _claim_names: { x: 'src1' }, _claim_sources: { src1: { JWT: 'not-a-jwt' } } }, dev)).resolves.toEqual({ sub: 'alice' });
  });

  test('at most maxSources (10) sources are resolved; claims of further ones are dropped', async () => {
    const names: Record<string, string> = {};
    const sources: Record<string, { JWT: string }> = {};
    for (let i = 0; i < 12; i++) {
      names[`c${i}`] = `s${i}`;
      sources[`s${i}`] = { JWT: await a.sign({ [`c${i}`]: i }) };
    }
    const claims = await resolveClaimSources({ sub: 'alice', _claim_names: names, _claim_sources: sources }, dev);
    expect(Object.keys(claims).sort()).toEqual(['sub', ...Array.from({ length: 10 }, (_, i) => `c${i}`)].sort());
    const three = await resolveClaimSources({ sub: 'alice', _claim_names: names, _claim_sources: sources }, { ...dev, maxSources: 3 });
    expect(three).toEqual({ sub: 'alice', c0: 0, c1: 1, c2: 2 });
  });

  test('each dropped source is logged with debug (openid-express:rp), without its access token', async () => {
    const lines: string[] = [];
    const log = createDebug.log;
    createDebug.enable('openid-express:rp');
    createDebug.log = (...args: unknown[]) => void lines.push(format(...args));
    try {
      await resolveClaimSources({
        sub: 'alice', _claim_names: { c_500: 'e500' }, _claim_sources: { e500: { endpoint: `${a.issuer}/claims-500`, access_token: ACCESS_TOKEN } },
      }, dev);
    } finally {
      createDebug.disable();
      createDebug.log = log;
    }
    const text = lines.join('\n');
    expect(text).toContain('claims source e500 dropped (claims c_500): the endpoint answered HTTP 500');
    expect(text).not.toContain(ACCESS_TOKEN);
  });
});
