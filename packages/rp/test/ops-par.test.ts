/**
 * Pushed Authorization Requests (RFC 9126) against a real oidc-provider: a client that must use PAR
 * is refused a plain authorization request (and the error names the option), logs in with
 * `pushedAuthorizationRequests: true`; an OP whose metadata says `require_pushed_authorization_requests`
 * gets PAR without being asked; PAR carries a signed request object (JAR) when the entry has one;
 * a PAR endpoint refusing the client's credentials is `client_auth_failed` before any redirect.
 */
import { createServer } from 'node:http';
import { decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import type { CustomFetch } from 'openid-client';
import { RelyingParty, oidc } from '@openid-express/rp';
import { startOp } from './support/oidc-provider.js';
import { close, listen, startRp, type TestRp } from './support/rp-app.js';
import { clearStore } from './support/expect.js';
import { privateJwk } from '../../../test/support/private-jwk.js';

/** The requests the RP sent to the OP's PAR endpoint (their form bodies). */
function recordingFetch(): { fetch: CustomFetch; pushed: URLSearchParams[] } {
  const pushed: URLSearchParams[] = [];
  const record: CustomFetch = (url, init) => {
    if (new URL(url).pathname === '/request') pushed.push(new URLSearchParams(String(init.body)));
    return fetch(url, init as RequestInit);
  };
  return { fetch: record, pushed };
}

/** The query of the URL the RP redirected the browser to at login start. */
async function loginRedirect(t: TestRp, agent = t.agent()): Promise<URL> {
  const start = await agent.get('/auth/login/op?returnTo=/me').set('accept', 'application/json');
  if (start.status !== 302) throw new Error(`login start answered ${start.status}: ${start.text}`);
  return new URL(start.headers.location);
}

describe('a client the OP requires to use PAR (client metadata require_pushed_authorization_requests)', () => {
  let plain: TestRp;
  let pushing: TestRp;
  const recorder = recordingFetch();
  beforeAll(async () => {
    const client = { require_pushed_authorization_requests: true };
    plain = await startRp({ client });
    pushing = await startRp({ client, provider: { pushedAuthorizationRequests: true, customFetch: recorder.fetch } });
  });
  beforeEach(async () => {
    await clearStore(plain);
    await clearStore(pushing);
  });
  afterAll(async () => {
    await plain.close();
    await pushing.close();
  });

  test('refuses a plain authorization request: the callback answers op_error invalid_request, naming pushedAuthorizationRequests', async () => {
    const agent = plain.agent();
    const url = await loginRedirect(plain, agent);
    expect(url.searchParams.has('request_uri')).toBe(false);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    const callback = await plain.op.authorize(url);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    const res = await agent.get(callback.pathname + callback.search).set('accept', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'op_error', op_error: 'invalid_request' });
    expect(res.body.error_description).toContain('Pushed Authorization Request must be used');
    expect(res.body.error_description).toContain('providers.op.pushedAuthorizationRequests: true');
    expect(await plain.authenticatedSessions()).toEqual([]);
  });

  test('with pushedAuthorizationRequests: true the parameters go to the PAR endpoint and the browser carries only client_id and request_uri', async () => {
    const agent = pushing.agent();
    const url = await loginRedirect(pushing, agent);
    expect(url.origin + url.pathname).toBe(`${pushing.op.issuer}/auth`);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const body = recorder.pushed.at(-1)!;
    expect(body.get('redirect_uri')).toBe(`${pushing.baseURL}/auth/callback/op`);
    expect(body.get('response_type')).toBe('code');
    for (const param of ['state', 'nonce', 'code_challenge', 'scope']) expect(body.get(param)).toBeTruthy();
    expect(body.get('client_secret')).toBeNull(); // client_secret_basic: the secret is in the Authorization header
    const callback = await pushing.op.authorize(url);
    expect(callback.searchParams.get('code')).toBeTruthy();
    const res = await agent.get(callback.pathname + callback.search);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/me');
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice' });
  });

  test('a request_uri is single use: the same authorization URL opened again does not log in a second time', async () => {
    const agent = pushing.agent();
    const url = await loginRedirect(pushing, agent);
    const first = await pushing.op.authorize(url);
    expect((await agent.get(first.pathname + first.search)).status).toBe(302);
    const again = await pushing.op.browser().authorize(url);
    expect(again.searchParams.get('code')).toBeNull();
    expect(again.searchParams.get('error')).toBe('invalid_request_uri');
    const res = await agent.get(again.pathname + again.search).set('accept', 'application/json');
    expect(res.status).toBe(400); // no state: the RP refuses it as a callback it did not start
  });
});

describe('an OP whose metadata says require_pushed_authorization_requests', () => {
  let t: TestRp;
  let never: TestRp;
  const recorder = recordingFetch();
  beforeAll(async () => {
    const op = { features: { pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true } } };
    t = await startRp({ op, provider: { customFetch: recorder.fetch } });
    never = await startRp({ op, provider: { pushedAuthorizationRequests: false } });
  });
  afterAll(async () => {
    await t.close();
    await never.close();
  });

  test('gets PAR without being asked, and the login succeeds', async () => {
    const discovery = await (await fetch(`${t.op.issuer}/.well-known/openid-configuration`)).json();
    expect(discovery.require_pushed_authorization_requests).toBe(true);
    const agent = t.agent();
    const before = recorder.pushed.length;
    const res = await t.login(agent);
    expect(res.status).toBe(302);
    expect(recorder.pushed.length).toBe(before + 1);
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('pushedAuthorizationRequests: false sends a plain request, which that OP refuses', async () => {
    const agent = never.agent();
    const url = await loginRedirect(never, agent);
    expect(url.searchParams.has('request_uri')).toBe(false);
    const callback = await never.op.authorize(url);
    const res = await agent.get(callback.pathname + callback.search).set('accept', 'application/json');
    expect(res.body).toMatchObject({ error: 'op_error', op_error: 'invalid_request' });
  });
});

describe('PAR with a request object (JAR) and a refusing PAR endpoint', () => {
  const rpKey = { ...(privateJwk() as JWK), kid: 'rp-sig-1', use: 'sig', alg: 'RS256' };
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicKey } = rpKey;
  let t: TestRp;
  let wrongSecret: TestRp;
  const recorder = recordingFetch();
  // the client's keys by jwks_uri (static `jwks` in client metadata does not survive oidc-provider's copy under jest)
  const jwksServer = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicKey] })));
  beforeAll(async () => {
    const jwksUri = `${await listen(jwksServer)}/jwks`;
    t = await startRp({
      rp: { keys: [rpKey] },
      client: { require_pushed_authorization_requests: true, jwks_uri: jwksUri, request_object_signing_alg: 'RS256' },
      op: { features: { requestObjects: { enabled: true, requireSignedRequestObject: true } } },
      provider: { requestObject: { by: 'reference' }, pushedAuthorizationRequests: true, customFetch: recorder.fetch },
    });
    wrongSecret = await startRp({ provider: { pushedAuthorizationRequests: true, clientSecret: 'not-the-secret-0123456789-0123456789' } });
  });
  afterAll(async () => {
    await t.close();
    await wrongSecret.close();
    await close(jwksServer);
  });

  test('the pushed request carries the signed request object by value (even with by: "reference"), and the OP logs in with it', async () => {
    const agent = t.agent();
    const url = await loginRedirect(t, agent);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const body = recorder.pushed.at(-1)!;
    expect([...body.keys()].sort()).toEqual(['client_id', 'request']);
    const jwt = body.get('request')!;
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'RS256', kid: 'rp-sig-1', typ: 'oauth-authz-req+jwt' });
    expect(decodeJwt(jwt)).toMatchObject({
      iss: 'app', aud: t.op.issuer, client_id: 'app', response_type: 'code', redirect_uri: `${t.baseURL}/auth/callback/op`, code_challenge_method: 'S256',
    });
    const callback = await t.op.authorize(url);
    const res = await agent.get(callback.pathname + callback.search);
    expect(res.status).toBe(302);
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice' });
  });

  test('a PAR endpoint refusing the client\'s credentials: client_auth_failed at login start, no redirect to the OP', async () => {
    const res = await wrongSecret.agent().get('/auth/login/op').set('accept', 'application/json');
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ error: 'client_auth_failed', op_error: 'invalid_client' });
    expect(res.body.error_description).toContain(`${wrongSecret.op.issuer}/request`);
    expect(res.body.error_description).not.toContain('not-the-secret');
  });
});

describe('a client registered on the fly (dynamic registration) that the OP requires to use PAR', () => {
  let op: Awaited<ReturnType<typeof startOp>>;
  beforeAll(async () => {
    op = await startOp({ clients: [], features: { registration: { enabled: true } } });
  });
  afterAll(() => op.close());

  test('the registration answer\'s require_pushed_authorization_requests makes its logins use PAR', async () => {
    const rp = new RelyingParty({
      baseURL: 'http://127.0.0.1:1',
      providers: { configured: oidc({ issuer: op.issuer, clientId: 'other', allowInsecureRequests: true }) }, // (one is required)
      dynamic: {
        registration: true, allowPrivateNetwork: true, allowInsecureRequests: true,
        clientMetadata: { require_pushed_authorization_requests: true },
      },
    });
    const name = await rp.discoverProvider(op.issuer);
    expect(rp.provider(name).pushedAuthorizationRequests).toBe(true);
    const { url } = await rp.authorizationRequest(name, { returnTo: '/' });
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const callback = await op.authorize(url);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });
});
