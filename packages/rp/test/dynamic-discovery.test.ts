/**
 * Finding an unknown OP on the fly, without the router: WebFinger against a real oidc-provider's
 * host, dynamic registration at it, reuse of stored registrations, and the SSRF guard.
 */
import { DynamicProviders, memoryRegistrationStore, type RegisteredClient } from '../src/discovery/registration.js';
import { guardedFetch, isPrivateAddress, PrivateNetworkError, privateNetworkError } from '../src/discovery/network-guard.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { ISSUER_REL, discoverIssuer, normalizeIdentifier } from '../src/discovery/webfinger.js';
import { startDynamicOp, type DynamicOp } from './simulators/dynamic-op.js';

const dev = { allowPrivateNetwork: true, allowInsecureRequests: true };
const redirectUriFor = (name: string) => `http://localhost:3000/auth/callback/${name}`;
let op: DynamicOp;

beforeAll(async () => {
  op = await startDynamicOp({ users: ['alice'] });
});
afterAll(() => op.close());
beforeEach(() => {
  op.webfingerRequests.length = 0;
});

describe('identifiers (OpenID Connect Discovery 1.0 §2.1)', () => {
  test.each([
    ['alice@example.org', 'acct:alice@example.org', 'example.org'],
    ['acct:alice@example.org', 'acct:alice@example.org', 'example.org'],
    ['alice@example.org:8080', 'acct:alice@example.org:8080', 'example.org:8080'],
    ['https://example.org/alice#frag', 'https://example.org/alice', 'example.org'],
    ['example.org/alice', 'https://example.org/alice', 'example.org'],
    ['example.org:8443', 'https://example.org:8443/', 'example.org:8443'],
  ])('%s → resource %s at %s', (input, resource, host) => {
    expect(normalizeIdentifier(input)).toEqual({ resource, host });
  });

  test.each(['', '   ', '#frag', 'alice@', 'acct:alice', 'mailto:alice@example.org', 'https://u:p@example.org/', 'a b@example.org', 'x'.repeat(600)])(
    'refuses %j with invalid_identifier',
    (input) => {
      expect(() => normalizeIdentifier(input)).toThrow(expect.objectContaining({ code: 'invalid_identifier' }));
    },
  );
});

describe('WebFinger', () => {
  test('alice@host is served by the OP that host names', async () => {
    await expect(discoverIssuer(`alice@${op.host}`, dev)).resolves.toBe(op.issuer);
    expect(op.webfingerRequests).toEqual([`acct:alice@${op.host}`]);
  });

  test('the URL form asks for the URL as resource', async () => {
    await expect(discoverIssuer(`${op.issuer}/alice`, dev)).resolves.toBe(op.issuer);
    expect(op.webfingerRequests).toEqual([`${op.issuer}/alice`]);
  });

  test('an unknown user is a clear webfinger_failed, not a crash', async () => {
    await expect(discoverIssuer(`mallory@${op.host}`, dev)).rejects.toMatchObject({ code: 'webfinger_failed', message: expect.stringContaining('HTTP 404') });
  });

  test('by default a host on the loopback network is refused before any request is made (SSRF)', async () => {
    await expect(discoverIssuer(`alice@${op.host}`)).rejects.toBeInstanceOf(PrivateNetworkError);
    await expect(discoverIssuer(`alice@localhost:${new URL(op.issuer).port}`, { allowInsecureRequests: true })).rejects.toMatchObject({ code: 'private_network' });
    expect(op.webfingerRequests).toEqual([]);
  });

  test('the guarded HTTP client refuses a name resolving to loopback where it connects (no DNS-rebinding window)', async () => {
    const before = op.webfingerRequests.length;
    const port = new URL(op.issuer).port;
    const err = await guardedFetch({})(`http://localhost:${port}/.well-known/webfinger?resource=acct:alice@x`, { method: 'GET', headers: {}, body: undefined, redirect: 'manual' })
      .catch((e: unknown) => e);
    expect(privateNetworkError(err)).toBeInstanceOf(PrivateNetworkError);
    expect(op.webfingerRequests.length).toBe(before);
    const allowed = await guardedFetch({ allowPrivateNetwork: true })(`http://localhost:${port}/.well-known/webfinger?resource=acct:alice@x`, { method: 'GET', headers: {}, body: undefined, redirect: 'manual' });
    expect(allowed.status).toBe(200);
    expect(op.webfingerRequests.length).toBe(before + 1);
  });

  test.each([
    ['127.0.0.1', true], ['10.1.2.3', true], ['172.20.0.1', true], ['192.168.1.1', true], ['169.254.169.254', true],
    ['100.64.0.1', true], ['0.0.0.0', true], ['::1', true], ['fd00::1', true], ['fe80::1', true], ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true], ['::ffff:a9fe:a9fe', true], ['0:0:0:0:0:ffff:7f00:1', true], ['::ffff:0a01:0203', true],
    ['8.8.8.8', false], ['2606:4700:4700::1111', false], ['::ffff:8.8.8.8', false], ['::ffff:808:808', false],
  ])('%s is private: %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});

describe('WebFinger answers that name no usable issuer', () => {
  let server: Server;
  let host = '';
  let answer: (res: express.Response) => void = () => undefined;
  beforeAll(async () => {
    const app = express();
    app.get('/.well-known/webfinger', (_req, res) => answer(res));
    server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));

  const link = (href: unknown) => (res: express.Response) => void res.json({ links: [{ rel: ISSUER_REL, href }] });
  test('the same server naming a proper https issuer is fine (the cases below fail for their own reason)', async () => {
    answer = link('https://op.example');
    const overTls = ((url: string, init: RequestInit) => fetch(url.replace(/^https:/, 'http:'), init)) as typeof fetch;
    await expect(discoverIssuer(`alice@${host}`, { allowPrivateNetwork: true, fetchImpl: overTls })).resolves.toBe('https://op.example');
  });

  test.each([
    ['an issuer with a query', link('https://op.example/?x=1')],
    ['an issuer with a fragment', link('https://op.example/#x')],
    ['an http issuer without the opt-in', link('http://op.example')],
    ['a non-URL issuer', link('not a url')],
    ['a non-string issuer', link(42)],
    ['no issuer link', (res: express.Response) => void res.json({ links: [{ rel: 'self', href: 'https://op.example' }] })],
    ['not JSON', (res: express.Response) => void res.type('html').send('<h1>hi</h1>')],
    ['an oversized answer (over 64 KiB)', (res: express.Response) => void res.type('json').send(`{"links":[${'{"rel":"x"},'.repeat(20000)}{}]}`)],
    ['a redirect (never followed)', (res: express.Response) => void res.redirect('http://169.254.169.254/latest/meta-data')],
  ])('%s is a webfinger_failed', async (_label, respond) => {
    answer = respond;
    // https as far as the code under test knows; the test server speaks plain http on loopback.
    const overTls = ((url: string, init: RequestInit) => fetch(url.replace(/^https:/, 'http:'), init)) as typeof fetch;
    await expect(discoverIssuer(`alice@${host}`, { allowPrivateNetwork: true, fetchImpl: overTls }))
      .rejects.toMatchObject({ code: 'webfinger_failed', message: expect.not.stringContaining('could not be reached') });
  });
});

test('an OP that answers discovery with megabytes is refused cleanly (bodies from strangers are capped at 1 MiB)', async () => {
  const app = express();
  let issuer = '';
  app.get('/.well-known/webfinger', (_req, res) => void res.json({ links: [{ rel: ISSUER_REL, href: issuer }] }));
  app.get('/.well-known/openid-configuration', (_req, res) => void res.json({ issuer, padding: 'x'.repeat(2 * 1024 * 1024) }));
  const server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, ...dev }, redirectUriFor);
    const err = await dynamic.resolve(`alice@${new URL(issuer).host}`).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'registration_failed', status: 502 });
    const chain: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = e.cause) chain.push(e.message);
    expect(chain.at(-1)).toBe('the response is larger than 1048576 bytes');
    expect((err as Error).message).toMatch(/^discovery at http:\/\/127\.0\.0\.1:\d+ failed: .*the response is larger than 1048576 bytes$/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

describe('a malformed registration answer is refused naming the field the OP got wrong', () => {
  let server: Server;
  let issuer = '';
  let answer: Record<string, unknown> = {};
  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.get('/.well-known/openid-configuration', (_req, res) => void res.json({
      issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
      registration_endpoint: `${issuer}/reg`, response_types_supported: ['code'],
    }));
    app.post('/reg', (req, res) => void res.status(201).json({ ...req.body, ...answer }));
    server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));

  test.each([
    // RFC 7591 §3.2.1: REQUIRED with a client_secret; several OPs omit it
    ['a client_secret without client_secret_expires_at', { client_id: 'c1', client_secret: 's1' }, '"client_secret_expires_at" property must be a number'],
    ['a numeric client_id', { client_id: 5, client_secret: 's1', client_secret_expires_at: 0 }, '"client_id" property must be a string'],
  ])('%s', async (_label, malformed, reason) => {
    answer = malformed;
    const err = await new DynamicProviders({ registration: true, ...dev }, redirectUriFor).resolve(issuer).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'registration_failed', status: 502 });
    expect((err as Error).message).toBe(`registration at ${issuer} failed: invalid response encountered: "response" body ${reason}`);
  });
});

describe('DynamicProviders', () => {
  test('resolves alice@host to a registered client at her OP, and reuses the registration', async () => {
    const saved: RegisteredClient[] = [];
    const memory = memoryRegistrationStore();
    const store = { get: (k: string) => memory.get(k), set: (k: string, v: RegisteredClient) => { saved.push(v); return memory.set(k, v); } };
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, store, ...dev }, redirectUriFor);
    const before = op.registrations;
    const first = await dynamic.resolve(`alice@${op.host}`);
    expect(first.issuer).toBe(op.issuer);
    expect(first.name).toMatch(/^dyn-[A-Za-z0-9_-]{22}$/);
    expect(first.config).toMatchObject({ type: 'oidc', issuer: op.issuer, scope: 'openid email profile', responseType: 'code', pkce: true });
    expect(first.config.clientId).toBeTruthy();
    expect(saved).toEqual([expect.objectContaining({ issuer: op.issuer, clientId: first.config.clientId, redirectUri: redirectUriFor(first.name) })]);
    const second = await dynamic.resolve(`acct:alice@${op.host}`);
    expect(second.config.clientId).toBe(first.config.clientId);
    expect(op.registrations - before).toBe(1);
    expect((await dynamic.get(first.name))?.clientId).toBe(first.config.clientId);
  });

  test('ten logins starting at once at a new OP register one client', async () => {
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, ...dev }, redirectUriFor);
    const before = op.registrations;
    const results = await Promise.all(Array.from({ length: 10 }, () => dynamic.resolve(`alice@${op.host}`)));
    expect(new Set(results.map((r) => r.config.clientId)).size).toBe(1);
    expect(op.registrations - before).toBe(1);
  });

  test('a registration made for another redirect URI (the app moved) is replaced', async () => {
    const store = memoryRegistrationStore();
    const before = op.registrations;
    const a = await new DynamicProviders({ webfinger: true, registration: true, store, ...dev }, redirectUriFor).resolve(`alice@${op.host}`);
    const moved = (name: string) => `https://app.example.com/auth/callback/${name}`;
    const b = await new DynamicProviders({ webfinger: true, registration: true, store, ...dev }, moved).resolve(`alice@${op.host}`);
    expect(b.config.clientId).not.toBe(a.config.clientId);
    expect(op.registrations - before).toBe(2);
  });

  test('allowIssuer decides which OPs may be used', async () => {
    const before = op.registrations;
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, allowIssuer: (iss) => iss === 'https://id.example.org', ...dev }, redirectUriFor);
    await expect(dynamic.resolve(`alice@${op.host}`)).rejects.toMatchObject({ code: 'issuer_not_allowed', status: 400 });
    expect(op.registrations).toBe(before);
  });

  test('with registration off, an OP without a stored registration is refused', async () => {
    const dynamic = new DynamicProviders({ webfinger: true, registration: false, ...dev }, redirectUriFor);
    await expect(dynamic.resolve(`alice@${op.host}`)).rejects.toMatchObject({ code: 'registration_disabled' });
  });

  test('without webfinger the identifier is the issuer URL itself', async () => {
    const dynamic = new DynamicProviders({ registration: true, ...dev }, redirectUriFor);
    await expect(dynamic.resolve(op.issuer)).resolves.toMatchObject({ issuer: op.issuer });
    await expect(dynamic.resolve(`alice@${op.host}`)).rejects.toMatchObject({ code: 'invalid_identifier' });
    expect(op.webfingerRequests).toEqual([]);
  });

  test('by default (no opt-in) a loopback OP is refused and nothing is registered', async () => {
    const before = op.registrations;
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, allowInsecureRequests: true }, redirectUriFor);
    await expect(dynamic.resolve(`alice@${op.host}`)).rejects.toMatchObject({ code: 'issuer_not_allowed', message: expect.stringContaining('private or loopback') });
    const direct = new DynamicProviders({ registration: true, allowInsecureRequests: true }, redirectUriFor);
    await expect(direct.resolve(op.issuer)).rejects.toMatchObject({ code: 'issuer_not_allowed' });
    expect(op.registrations).toBe(before);
    expect(op.webfingerRequests).toEqual([]);
  });

  test('an OP that refuses registration is a clear registration_failed', async () => {
    const guarded = await startDynamicOp({ initialAccessToken: 'only-with-this' });
    try {
      const dynamic = new DynamicProviders({ webfinger: true, registration: true, ...dev }, redirectUriFor);
      await expect(dynamic.resolve(`alice@${guarded.host}`)).rejects.toMatchObject({ code: 'registration_failed', status: 502 });
      const allowed = new DynamicProviders({ webfinger: true, registration: true, initialAccessToken: 'only-with-this', ...dev }, redirectUriFor);
      await expect(allowed.resolve(`alice@${guarded.host}`)).resolves.toMatchObject({ issuer: guarded.issuer });
    } finally {
      await guarded.close();
    }
  });
});
