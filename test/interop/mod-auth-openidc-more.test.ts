/**
 * Interop, more of what a certified RP does against our OP, with Apache mod_auth_openidc:
 * - OpenID Connect Back-Channel Logout 1.0: the user signs out at the OP itself, the OP POSTs a
 *   logout token to the module's `<redirect_uri>?logout=backchannel`, the module ends its session;
 *   forged logout tokens (a key not in the OP's JWKS, a wrong `iss`, a wrong `aud`) are refused.
 * - Discovery + dynamic client registration: the module in its multi-provider mode (OIDCMetadataDir,
 *   no static provider) is given our issuer, or alice's account (WebFinger), on its discovery page,
 *   fetches our discovery document, registers itself at our registration endpoint and signs the
 *   user in; the client it registered is logged out by back-channel logout too.
 * Needs `apt-get install -y apache2 libapache2-mod-auth-openidc` (and the openssl CLI, for the
 * WebFinger OP's certificate); fails (never skips) without them.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import session from 'express-session';
import { importJWK, SignJWT, type JWK } from 'jose';
import { generateKeys, memoryAccounts, op, webfinger, type OpApp } from '@openid-express/op';
import { FormBrowser, type BrowserPage } from '../support/op-forms.js';
import { requireApache, startApache, withApacheLog, type ApacheRp } from './support/apache.js';
import { onFreePort } from '../support/ports.js';
import { ALICE, APACHE_CLIENT, signInAtOp, startApacheWithOp, startInteropOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';
import { privateJwk } from '../support/private-jwk.js';

const CLIENT_ID = APACHE_CLIENT.id;
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Probe { status: number; location: string | null; sub: string | null }

/** The protected page fetched with `browser`'s cookies, redirects not followed: how Apache answers this session. */
async function probe(browser: FormBrowser, url: string, headers: Record<string, string> = {}): Promise<Probe> {
  const res = await fetch(url, { headers: { ...headers, cookie: browser.jar.header(url), accept: 'text/html' }, redirect: 'manual' });
  await res.arrayBuffer();
  // `Header always set` writes "(null)" for an unset variable: no claim, no sub
  const sub = res.headers.get('x-oidc-sub');
  return { status: res.status, location: res.headers.get('location'), sub: sub === '(null)' ? null : sub };
}

/** The user signs out at the OP itself (no id_token_hint: no RP started it) and confirms. */
async function signOutAtOp(browser: FormBrowser, issuer: string): Promise<void> {
  const confirm = await browser.open(`${issuer}/session/end`);
  expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
  const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
  expect(done.status).toBe(200);
}

/** Back-channel logout deliveries the OP reports (oidc-provider's events): ok = the RP answered 200/204. */
function recordDeliveries(provider: OpApp['provider']): Array<{ ok: boolean; sid?: string; error?: string }> {
  const delivered: Array<{ ok: boolean; sid?: string; error?: string }> = [];
  provider.on('backchannel.success', (_ctx: unknown, _client: unknown, _account: unknown, sid: string) => delivered.push({ ok: true, sid }));
  provider.on('backchannel.error', (_ctx: unknown, err: Error, _client: unknown, _account: unknown, sid: string) => delivered.push({ ok: false, sid, error: err.message }));
  return delivered;
}

/** Error-level lines mod_auth_openidc wrote to `log` (behaviour is asserted elsewhere: this only catches complaints). */
const moduleErrors = (log: string) => log.split('\n').filter((l) => l.includes('[auth_openidc:error]'));

describe('mod_auth_openidc against op(): back-channel logout', () => {
  let opServer: InteropOp;
  let apache: ApacheRp;
  let delivered: ReturnType<typeof recordDeliveries>;
  // the OP's signing key, known here so that a test can sign logout tokens as the OP does
  const keys = generateKeys();
  const opKey = keys.jwks.keys[0] as JWK;

  beforeAll(async () => {
    ({ opServer, apache } = await startApacheWithOp({
      client: (apacheOrigin) => ({
        // the module's back-channel logout endpoint is its redirect URI with ?logout=backchannel (2.4.x);
        // it finds sessions by the ID token's sid (by sub without one): ask the OP for sid
        backchannel_logout_uri: `${apacheOrigin}/protected/redirect_uri?logout=backchannel`,
        backchannel_logout_session_required: true,
      }),
      op: { ...keys, allowPrivateHosts: ['127.0.0.1'] },
      // <redirect_uri>?info=json answers the session's ID token claims: the forged tokens carry its sid
      directives: ['OIDCPKCEMethod S256', 'OIDCInfoHook id_token'],
    }));
    delivered = recordDeliveries(opServer.provider);
  });

  afterAll(async () => {
    await apache?.stop();
    await opServer?.close();
  });

  const protectedUrl = () => `${apache.origin}/protected/whoami.html`;

  /** A new browser signed in at Apache through the OP, and the session's ID token claims. */
  async function signedIn(): Promise<{ browser: FormBrowser; idToken: Record<string, unknown> }> {
    const browser = new FormBrowser();
    const page = await signInAtOp(browser, await browser.open(protectedUrl()), protectedUrl());
    expect([page.status, page.headers.get('x-oidc-sub')]).toEqual([200, ALICE.id]);
    const info = await browser.open(`${apache.origin}/protected/redirect_uri?info=json`);
    expect(info.status).toBe(200);
    const idToken = (JSON.parse(info.html) as { id_token: Record<string, unknown> }).id_token;
    // the ID token names the OP's session (Back-Channel Logout 1.0 §2.1-2.2: with sid in logout tokens, in ID tokens too)
    expect(idToken).toMatchObject({ iss: opServer.issuer, aud: CLIENT_ID, sub: ALICE.id, sid: expect.any(String) });
    return { browser, idToken };
  }

  it("signing out at the OP ends Apache's session by the OP's logout token", () => withApacheLog(() => apache, async () => {
    const { browser, idToken } = await signedIn();
    // control: the session is served, without a trip to the OP
    expect(await probe(browser, protectedUrl())).toEqual({ status: 200, location: null, sub: ALICE.id });
    const sent = delivered.length;
    const logFrom = apache.errorLog().length;

    await signOutAtOp(browser, opServer.issuer);

    // the OP posted one logout token, for this session, and Apache answered it 200
    expect(delivered.slice(sent)).toEqual([{ ok: true, sid: idToken.sid }]);
    expect(moduleErrors(apache.errorLog().slice(logFrom))).toEqual([]);
    // the browser still holds Apache's session cookie, but Apache no longer serves it: it sends the
    // browser to the OP's authorization endpoint, and answers an XHR 401 (OIDCUnAuthAction)
    const after = await probe(browser, protectedUrl());
    expect([after.status, after.sub, after.location?.startsWith(`${opServer.issuer}/auth?`)]).toEqual([302, null, true]);
    expect((await probe(browser, protectedUrl(), { 'x-requested-with': 'XMLHttpRequest' })).status).toBe(401);
  }));

  it('refuses forged logout tokens with HTTP 400 and keeps the session', () => withApacheLog(() => apache, async () => {
    const { browser, idToken } = await signedIn();
    const endpoint = `${apache.origin}/protected/redirect_uri?logout=backchannel`;
    // the claims of the OP's own logout tokens for this session (Back-Channel Logout 1.0 §2.4)
    const claims = (over: Record<string, unknown> = {}) => ({
      iss: opServer.issuer, aud: CLIENT_ID, sub: ALICE.id, sid: idToken.sid,
      iat: Math.floor(Date.now() / 1000), jti: randomUUID(), events: { [BACKCHANNEL_EVENT]: {} }, ...over,
    });
    const sign = async (payload: Record<string, unknown>, key: JWK) => new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: opKey.kid, typ: 'logout+jwt' }).sign(await importJWK(key, 'RS256'));
    // a key the OP's JWKS does not hold, under the OP's key's kid: only the signature tells them apart
    const otherKey = { ...privateJwk(), kid: opKey.kid } as JWK;
    const post = async (token: string) => {
      const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) });
      await res.arrayBuffer();
      return res.status;
    };

    const forged: Array<[string, string]> = [
      ['signed with a key not in the JWKS', await sign(claims(), otherKey)],
      ['another iss', await sign(claims({ iss: `${opServer.origin}/evil` }), opKey)],
      ['another aud', await sign(claims({ aud: 'another-client' }), opKey)],
    ];
    for (const [what, token] of forged) {
      // Back-Channel Logout 1.0 §2.6 / §2.8: a token failing validation is refused with HTTP 400 Bad Request
      expect([what, await post(token)]).toEqual([what, 400]);
      expect([what, await probe(browser, protectedUrl())]).toEqual([what, { status: 200, location: null, sub: ALICE.id }]);
    }
    // control: the same token with the OP's key, iss and aud is taken, and ends the session
    expect(await post(await sign(claims(), opKey))).toBe(200);
    expect((await probe(browser, protectedUrl())).status).toBe(302);
  }));
});

/**
 * The module in multi-provider mode. Apache serves plain http here, and two things the module
 * registers need https by OIDC Dynamic Client Registration 1.0 §2, which our OP enforces
 * (oidc-provider's checks), so the registration request is amended (OIDCProviderRegistrationEndpointJson
 * is merged into it):
 * - initiate_login_uri, "using the https scheme": the module sends its (http) redirect URI, refused
 *   with invalid_client_metadata; an https one is sent instead (never used by these tests);
 * - it asks for every response type the OP's discovery lists (ours: the implicit and hybrid ones
 *   too), and "Web Clients using the OAuth Implicit Grant Type MUST only register URLs using the
 *   https scheme as redirect_uris": refused with invalid_redirect_uri; it asks for the code flow
 *   only instead, all it uses (OIDCResponseType's default, "code").
 */
function startMultiProviderApache(port: number): Promise<ApacheRp> {
  return startApache({
    port, metadataDir: true,
    directives: [
      'OIDCPKCEMethod S256',
      `OIDCProviderRegistrationEndpointJson '${JSON.stringify({
        initiate_login_uri: `https://127.0.0.1:${port}/protected/redirect_uri`,
        response_types: ['code'], grant_types: ['authorization_code', 'refresh_token'],
      })}'`,
    ],
  });
}

/** The registration responses the module stored in its metadata dir (`<issuer>.client`), by file name. */
function storedClients(apache: ApacheRp): Record<string, Record<string, unknown>> {
  const dir = apache.metadataDir!;
  return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.client'))
    .map((f) => [f, JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>]));
}

/**
 * From the protected page to our OP's login page through the module's own discovery page (a GET
 * form with a CSRF token, which this version's 3rd-party-initiated login lacks: without it the
 * module refuses to discover or register), answering `identifier` (an issuer or an account).
 */
async function discover(browser: FormBrowser, protectedUrl: string, identifier: string): Promise<BrowserPage> {
  const page = await browser.open(protectedUrl);
  expect(page.status).toBe(200);
  const form = browser.form(page, { has: 'iss' });
  expect(form).toMatchObject({ method: 'get', fields: { x_csrf: expect.any(String), target_link_uri: protectedUrl } });
  const chosen = new URL(form.action);
  for (const [k, v] of Object.entries({ ...form.fields, iss: identifier })) chosen.searchParams.set(k, v);
  return browser.open(chosen.href);
}

describe('mod_auth_openidc against op(): discovery by issuer and dynamic client registration', () => {
  let opServer: InteropOp;
  let apache: ApacheRp;
  let delivered: ReturnType<typeof recordDeliveries>;
  const registered: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    requireApache();
    // no clients: the module registers itself (allowPrivateHosts: back-channel logout to it on loopback)
    opServer = await startInteropOp(() => [], { features: { registration: true }, allowPrivateHosts: ['127.0.0.1'] });
    opServer.provider.on('registration_create.success', (_ctx: unknown, client: { metadata(): Record<string, unknown> }) => registered.push(client.metadata()));
    delivered = recordDeliveries(opServer.provider);
    apache = await onFreePort(startMultiProviderApache);
  });

  afterAll(async () => {
    await apache?.stop();
    await opServer?.close();
  });

  const protectedUrl = () => `${apache.origin}/protected/whoami.html`;

  it('is given our issuer, discovers the OP, registers at it and signs the user in', () => withApacheLog(() => apache, async () => {
    // 3rd-party-initiated login (<redirect_uri>?iss=…&target_link_uri=…, what a link to the client's
    // initiate_login_uri does) to an OP the module does not know yet: it refuses to discover or
    // register without its discovery page's CSRF cookie ("... and Discovery is not allowed")
    const thirdParty = `${apache.origin}/protected/redirect_uri?${new URLSearchParams({ iss: opServer.issuer, target_link_uri: protectedUrl() })}`;
    const refused = await new FormBrowser().open(thirdParty);
    expect(refused.url.startsWith(opServer.origin)).toBe(false);
    expect(registered).toEqual([]);

    const browser = new FormBrowser();
    const login = await discover(browser, protectedUrl(), opServer.issuer);

    // one client registered at our registration endpoint, and the authorization request is the module's, as that client
    expect(registered).toHaveLength(1);
    const client = registered[0]!;
    expect(client).toMatchObject({
      client_id: expect.any(String), client_secret: expect.any(String), token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${apache.origin}/protected/redirect_uri`], response_types: ['code'],
    });
    expect(await opServer.provider.Client.find(client.client_id as string)).toBeDefined();
    expect(opServer.authRequests.at(-1)).toMatchObject({ client_id: client.client_id, code_challenge_method: 'S256' });
    // the module keeps our registration response (client_id and secret) in its metadata dir
    expect(Object.values(storedClients(apache))).toEqual([expect.objectContaining({
      client_id: client.client_id, client_secret: client.client_secret, client_secret_expires_at: 0,
    })]);

    const page = await signInAtOp(browser, login, protectedUrl());
    expect([page.status, page.headers.get('x-oidc-sub'), page.headers.get('x-oidc-email')]).toEqual([200, ALICE.id, ALICE.claims.email]);

    // now that the OP is known, 3rd-party-initiated login goes straight to it, with the same client
    const other = new FormBrowser();
    const again = await signInAtOp(other, await other.open(thirdParty), protectedUrl());
    expect([again.status, again.headers.get('x-oidc-sub')]).toEqual([200, ALICE.id]);
    expect(opServer.authRequests.at(-1)).toMatchObject({ client_id: client.client_id });
    expect(registered).toHaveLength(1);
  }));

  it('registered its back-channel logout URI: signing out at the OP ends its session', () => withApacheLog(() => apache, async () => {
    const browser = new FormBrowser();
    const page = await signInAtOp(browser, await discover(browser, protectedUrl(), opServer.issuer), protectedUrl());
    expect([page.status, page.headers.get('x-oidc-sub')]).toEqual([200, ALICE.id]);
    // the registration made in the first test (or here, when run alone) is reused
    expect(registered).toHaveLength(1);
    // the module registers its back-channel logout URI by itself, without backchannel_logout_session_required
    expect(registered[0]).toMatchObject({
      backchannel_logout_uri: `${apache.origin}/protected/redirect_uri?logout=backchannel`, backchannel_logout_session_required: false,
    });
    const sent = delivered.length;
    const logFrom = apache.errorLog().length;

    await signOutAtOp(browser, opServer.issuer);

    // Apache took the OP's logout token (200); without backchannel_logout_session_required neither
    // the ID token nor the logout token carries sid, and the module finds the session by sub
    expect(delivered.slice(sent)).toEqual([{ ok: true, sid: expect.any(String) }]);
    expect(moduleErrors(apache.errorLog().slice(logFrom))).toEqual([]);
    // Apache's session is over: with no provider of its own, the module shows its discovery page again
    const after = await browser.open(protectedUrl());
    expect([after.url, after.status, after.html]).toEqual([protectedUrl(), 200, expect.stringContaining('name="iss"')]);
    expect(after.headers.get('x-oidc-sub')).toBeNull();
  }));
});

/** A self-signed certificate for 127.0.0.1 (openssl CLI). */
function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'interop-cert-'));
  try {
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`openssl could not make a certificate (${made.error?.message ?? made.stderr}): apt-get install -y openssl`);
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `plain` fetch, but https requests go by node:https trusting `ca` (Node 20's fetch cannot be given a
 * CA without the undici package). Installed as the global fetch, which FormBrowser uses, for the
 * WebFinger OP's certificate; redirects are never followed (FormBrowser follows them itself).
 */
function fetchTrusting(ca: Buffer, plain: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.protocol !== 'https:' || input instanceof Request) return plain(input, init);
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(url, { method: init?.method ?? 'GET', headers: Object.fromEntries(new Headers(init?.headers)), ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode!;
          resolve(new Response(status === 204 || status === 304 ? null : new Uint8Array(Buffer.concat(chunks)), { status, headers }));
        });
      });
      req.on('error', reject);
      req.end(init?.body == null ? undefined : String(init.body));
    });
  }) as typeof fetch;
}

interface HttpsOp { origin: string; issuer: string; provider: OpApp['provider']; webfingerResources: string[]; close(): Promise<void> }

/**
 * Our OP on https (self-signed, `tls`), mounted at /op with `webfinger()` at the root of its host,
 * registration open. This module version does WebFinger only at https://<account's host>/ and takes
 * only an https issuer from it, so this OP cannot be startInteropOp()'s plain-http one.
 */
async function startHttpsOp(tls: { key: Buffer; cert: Buffer }): Promise<HttpsOp> {
  const server: HttpsServer = createHttpsServer(tls);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${origin}/op`;
  const accounts = memoryAccounts([ALICE]);
  const webfingerResources: string[] = [];
  const app = express();
  app.get('/.well-known/webfinger', (req, _res, next) => { webfingerResources.push(String(req.query.resource)); next(); });
  app.use(webfinger({ issuer, accounts }));
  app.use(session({ secret: 'interop-session-secret-0123456789', resave: false, saveUninitialized: false }));
  const opApp = op({ issuer, accounts, ...generateKeys(), features: { registration: true } });
  app.use('/op', opApp);
  server.on('request', app);
  return {
    origin, issuer, provider: opApp.provider, webfingerResources,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('mod_auth_openidc against op(): discovery by account (WebFinger) and dynamic client registration', () => {
  let opServer: HttpsOp;
  let apache: ApacheRp;
  const plainFetch = globalThis.fetch;
  const registered: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    requireApache();
    const tls = selfSignedCert();
    globalThis.fetch = fetchTrusting(tls.cert, plainFetch);
    opServer = await startHttpsOp(tls);
    opServer.provider.on('registration_create.success', (_ctx: unknown, client: { metadata(): Record<string, unknown> }) => registered.push(client.metadata()));
    // the module calls the OP with OIDCSSLValidateServer Off (apacheConf), so the self-signed certificate is taken
    apache = await onFreePort(startMultiProviderApache);
  });

  afterAll(async () => {
    globalThis.fetch = plainFetch;
    await apache?.stop();
    await opServer?.close();
  });

  it("is given alice's account, finds the OP by WebFinger, registers at it and signs the user in", () => withApacheLog(() => apache, async () => {
    const browser = new FormBrowser();
    const protectedUrl = `${apache.origin}/protected/whoami.html`;
    const account = `${ALICE.username}@${new URL(opServer.origin).host}`;
    const login = await discover(browser, protectedUrl, account);

    // WebFinger at the account's host, for acct:alice@127.0.0.1:<port>, named our issuer
    expect(opServer.webfingerResources).toEqual([`acct:${account}`]);
    expect(registered).toHaveLength(1);
    expect(registered[0]).toMatchObject({ redirect_uris: [`${apache.origin}/protected/redirect_uri`], response_types: ['code'] });
    expect(Object.values(storedClients(apache))).toEqual([expect.objectContaining({ client_id: registered[0]!.client_id })]);
    expect(login.url.startsWith(`${opServer.issuer}/interaction/`)).toBe(true);

    const page = await signInAtOp(browser, login, protectedUrl);
    expect([page.status, page.headers.get('x-oidc-sub'), page.headers.get('x-oidc-email')]).toEqual([200, ALICE.id, ALICE.claims.email]);
  }));
});
