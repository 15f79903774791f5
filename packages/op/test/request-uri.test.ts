/**
 * `features.requestUri` (request-uri.ts): OIDC Core 6.2 request objects by reference, from the client's
 * registered `request_uris`, against a real op() and request objects served by the test app (the issuer
 * is http on loopback, so http request_uris are allowed). oidc-provider v9 takes no unsigned request objects
 * (`none` is not among its `requestObjectSigningAlgValues`, nor can it be configured): one by reference is
 * refused as one by value is. oidc-provider's SSRF guard cannot install
 * inside jest's VM (see private-hosts.test.ts): the refusal of a private address is proven in a plain
 * Node child process at the end, with oidc-provider's guard installed.
 */
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { generateKeys, memoryAccounts, op, OpConfigError, type OpOptions } from '@openid-express/op';
import {
  ALICE, authUrl, browserOf, callbackOf, client, codeRequest, exchange, register, signIn, startCertOp, type FlowFixture,
} from './cert-support.js';
import { plainNodeChild } from './support/plain-node.js';

/** What the test app answers at /ro/:name: a request object (after `delay` ms), a status, or nothing at all. */
const served = new Map<string, { body?: string; status?: number; hang?: boolean; delay?: number }>();
/** How many times each /ro/:name was fetched. */
const hits = new Map<string, number>();

let f: FlowFixture;
beforeAll(async () => {
  f = await startCertOp({}, {
    beforeOp: (app) => app.get('/ro/:name', async (req, res) => {
      hits.set(req.params.name, (hits.get(req.params.name) ?? 0) + 1);
      const answer = served.get(req.params.name);
      if (answer?.delay) await new Promise((r) => setTimeout(r, answer.delay));
      if (!answer) return void res.status(404).end();
      if (answer.hang) return; // never answers
      if (answer.status) return void res.redirect(answer.status, '/ro/elsewhere');
      res.type('application/oauth-authz-req+jwt').send(answer.body);
    }),
  });
});
afterAll(async () => {
  await f?.op.close();
});

const uriOf = (name: string) => `${f.op.origin}/ro/${name}`;

/** The request's parameters as a request object of `clientId` for this OP. */
const claimsOf = (clientId: string, params: Record<string, string | undefined>) => ({
  ...Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)), iss: clientId, aud: f.op.issuer, client_id: clientId,
});

/** A sign-in whose parameters come only from the request object at `name` (the suite's way). */
async function byReference(config: client.Configuration, name: string, object: (params: Record<string, string | undefined>) => Promise<string>) {
  const req = await codeRequest(f, {}, config);
  served.set(name, { body: await object(req.params) });
  const url = authUrl(f, { response_type: 'code', scope: 'openid', request_uri: `${uriOf(name)}#sha256-of-it` }, config);
  return { req, url };
}

/** An authorization request with `request_uri` and the redirect_uri and state outside it, so a refusal goes back to the client. */
async function refusedWith(config: client.Configuration, requestUri: string) {
  const req = await codeRequest(f, {}, config);
  const page = await browserOf(f).open(authUrl(f, { ...req.params, request_uri: requestUri }, config));
  const answer = callbackOf(page).searchParams;
  expect(answer.get('state')).toBe(req.params.state);
  expect(answer.get('code')).toBeNull();
  return { error: answer.get('error'), description: answer.get('error_description') ?? '' };
}

describe('discovery', () => {
  test('says request_uri is supported and must be registered', async () => {
    const meta = await (await fetch(`${f.op.issuer}/.well-known/openid-configuration`)).json();
    expect(meta.request_uri_parameter_supported).toBe(true);
    expect(meta.require_request_uri_registration).toBe(true);
  });
});

/** A client registered (confidential) with `request_uris` at the test app and an RS256 key for its request objects. */
async function registerRs256(names: string[]) {
  const keys = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), alg: 'RS256', use: 'sig', kid: 'k1' };
  const config = await register(f, { request_uris: names.map((n) => `${uriOf(n)}#sha256-of-it`), request_object_signing_alg: 'RS256', jwks: { keys: [jwk] } });
  const clientId = config.clientMetadata().client_id;
  const sign = (key: CryptoKey) => async (params: Record<string, string | undefined>) => new SignJWT(claimsOf(clientId, params))
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuedAt().setExpirationTime('5m').sign(key);
  return { config, clientId, sign, key: keys.privateKey };
}

describe('a request object by reference from a registered request_uri', () => {
  test('signed RS256 with the key the client registered: alice signs in, with the state and nonce found only in it', async () => {
    const { config, sign, key } = await registerRs256(['signed']);
    const { req, url } = await byReference(config, 'signed', sign(key));
    const page = await signIn(browserOf(f), url, { login: 'alice', password: ALICE.password });
    expect((await exchange(config, page, req)).claims()!.sub).toBe('alice');
  });

  test('signed by another key, or unsigned, it is invalid_request_object (oidc-provider\'s checks)', async () => {
    const { config, clientId, sign } = await registerRs256(['forged', 'unsigned']);
    const other = await generateKeyPair('RS256');
    for (const [name, object] of [
      ['forged', sign(other.privateKey)],
      ['unsigned', async (params: Record<string, string | undefined>) => new UnsecuredJWT(claimsOf(clientId, params)).encode()],
    ] as const) {
      const req = await codeRequest(f, {}, config);
      served.set(name, { body: await object(req.params) });
      const refused = await browserOf(f).open(authUrl(f, { ...req.params, request_uri: uriOf(name) }, config));
      expect([name, callbackOf(refused).searchParams.get('error')]).toEqual([name, 'invalid_request_object']);
    }
  });
});

describe('a request_uri that cannot be used is invalid_request_uri, sent back to the client naming its host and why', () => {
  let config: client.Configuration;
  beforeAll(async () => {
    ({ config } = await registerRs256(['missing', 'moved', 'slow', 'huge']));
    served.set('moved', { status: 302 });
    served.set('slow', { hang: true });
    served.set('huge', { body: `${'a'.repeat(70 * 1024)}.b.c` });
  });
  const host = () => new URL(f.op.origin).host;

  test('one the client did not register', async () => {
    const { error, description } = await refusedWith(config, uriOf('unregistered'));
    expect(error).toBe('invalid_request_uri');
    expect(description).toContain(`at ${host()} is not one of the request_uris client "${config.clientMetadata().client_id}" registered`);
  });

  test.each([
    ['missing', 'answered HTTP 404'],
    ['moved', 'answered HTTP 302, not 200 with the request object: redirects are not followed'],
    // (what failed before an answer is one message, whatever it was: a stranger must not map the OP's network; the log says)
    ['slow', 'could not be fetched (the OP\'s log says why)'],
    ['huge', `answered more than ${64 * 1024} bytes`],
  ])('one that is %s', async (name, why) => {
    const { error, description } = await refusedWith(config, uriOf(name));
    expect(error).toBe('invalid_request_uri');
    expect(description).toContain(`the request_uri at ${host()} ${why}`);
  });

  test('an unknown client gets the error page, as without a request_uri', async () => {
    const url = new URL(authUrl(f, { response_type: 'code', scope: 'openid', redirect_uri: f.redirectUri, request_uri: uriOf('missing') }, config));
    url.searchParams.set('client_id', 'nobody');
    const page = await browserOf(f).open(url.href);
    expect(page.status).toBe(400);
    expect(page.stoppedAt).toBeUndefined();
    expect(page.html).toContain('invalid_client');
  });
});

describe('what a stranger\'s authorization requests can make the OP fetch', () => {
  test('concurrent requests for one request_uri share one fetch', async () => {
    const { config, sign, key } = await registerRs256(['shared']);
    const req = await codeRequest(f, {}, config);
    served.set('shared', { body: await sign(key)(req.params), delay: 300 });
    hits.delete('shared');
    const url = authUrl(f, { response_type: 'code', scope: 'openid', request_uri: uriOf('shared') }, config);
    const pages = await Promise.all(Array.from({ length: 6 }, () => browserOf(f).open(url)));
    expect(pages.map((p) => p.status)).toEqual(Array(6).fill(200)); // each at the sign-in page
    expect(hits.get('shared')).toBe(1); // before: 6
  });

  test(`at most 8 fetches of one client at once: the others are refused at once, not queued`, async () => {
    const names = Array.from({ length: 10 }, (_, i) => `held${i}`);
    const { config } = await registerRs256(names);
    for (const name of names) served.set(name, { hang: true });
    const answers = await Promise.all(names.map((name) => refusedWith(config, uriOf(name))));
    const busy = answers.filter((a) => a.description.includes('fetches of client'));
    expect(busy).toHaveLength(2);
    expect(busy[0]!.description).toContain('was not fetched: 8 fetches of client');
  }, 60_000);

  test('a request_uri under this OP\'s issuer cannot be registered (a chain of them had the OP fetch itself 30 times per request)', async () => {
    await expect(register(f, { request_uris: [`${f.op.issuer}/auth?client_id=x&request_uri=y`] })).rejects.toMatchObject({ error: 'invalid_client_metadata' });
  });

  test('a request that is itself a request_uri fetch (this OP under another name, another op()) fetches nothing', async () => {
    const { config } = await registerRs256(['chained']);
    hits.delete('chained');
    const req = await codeRequest(f, {}, config);
    const url = authUrl(f, { ...req.params, request_uri: uriOf('chained') }, config);
    const res = await fetch(url, { redirect: 'manual', headers: { 'x-openid-express-request-uri': '1' } });
    expect(new URL(res.headers.get('location')!).searchParams.get('error_description')).toContain('was not fetched: this request is itself a request_uri fetch');
    expect(hits.get('chained')).toBeUndefined();
  });

  test('a client that must use PAR is refused before anything is fetched', async () => {
    const par = await register(f, { request_uris: [uriOf('par-only')], require_pushed_authorization_requests: true });
    hits.delete('par-only');
    const { error, description } = await refusedWith(par, uriOf('par-only'));
    expect([error, description]).toEqual(['invalid_request', 'Pushed Authorization Request must be used']);
    expect(hits.get('par-only')).toBeUndefined();
  });

  test('the endpoint with a trailing slash takes a request_uri too, and a repeated client_id gets oidc-provider\'s own answer', async () => {
    const { config, sign, key } = await registerRs256(['slash']);
    const req = await codeRequest(f, {}, config);
    served.set('slash', { body: await sign(key)(req.params) });
    const url = new URL(authUrl(f, { response_type: 'code', scope: 'openid', request_uri: uriOf('slash') }, config));
    url.pathname += '/';
    const page = await signIn(browserOf(f), url.href, { login: 'alice', password: ALICE.password });
    expect((await exchange(config, page, req)).claims()!.sub).toBe('alice'); // before: request_uri_not_supported
    const twice = new URL(authUrl(f, { ...req.params, request_uri: uriOf('slash') }, config));
    twice.searchParams.append('client_id', config.clientMetadata().client_id);
    expect((await browserOf(f).open(twice.href)).html).toContain('parameter must not be provided twice');
  });
});

test('with allowPrivateHosts, a dynamically registered client\'s request_uri may not reach those hosts (a client of `clients` may: the plain-Node test below)', async () => {
  const g = await startCertOp({ allowPrivateHosts: ['127.0.0.1'] });
  try {
    const config = await register(g, { request_uris: [`${g.op.origin}/ro/x`] });
    const req = await codeRequest(g, {}, config);
    const page = await browserOf(g).open(authUrl(g, { ...req.params, request_uri: `${g.op.origin}/ro/x` }, config));
    expect(callbackOf(page).searchParams.get('error_description')).toContain('is on a host of allowPrivateHosts, which only clients listed in op()\'s `clients` may use');
  } finally {
    await g.op.close();
  }
});

test("PAR's request_uri works as before", async () => {
  const req = await codeRequest(f, {}, f.web);
  const params = Object.fromEntries(Object.entries(req.params).filter((e): e is [string, string] => e[1] !== undefined));
  const url = await client.buildAuthorizationUrlWithPAR(f.web, params);
  expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
  const page = await signIn(browserOf(f), url.href, { login: 'alice', password: ALICE.password });
  expect((await exchange(f.web, page, req)).claims()!.sub).toBe('alice');
});

describe('request_uris client metadata', () => {
  const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
  const base = { issuer: 'https://id.example.com/op', accounts, ...generateKeys() };
  const web = { client_id: 'web', client_secret: 'web-secret-web-secret', redirect_uris: ['https://app.example.com/cb'] };
  const startupError = (options: Partial<OpOptions>) => {
    try {
      op({ ...base, ...options } as OpOptions);
    } catch (err) {
      expect(err).toBeInstanceOf(OpConfigError);
      return (err as OpConfigError).message;
    }
    throw new Error('op() accepted bad options');
  };

  test('a static client may register https request_uris', () => {
    expect(() => op({ ...base, clients: [{ ...web, request_uris: ['https://app.example.com/request.jwt#hash'] }] })).not.toThrow();
  });

  test.each([
    ['an http one (the issuer is https)', ['http://app.example.com/request.jwt']],
    ['not an array', 'https://app.example.com/request.jwt'],
  ])('%s is refused at start-up', (_what, uris) => {
    expect(startupError({ clients: [{ ...web, request_uris: uris as string[] }] })).toMatch(/clients\[0\].*request_uris must be an array of https URLs/);
  });

  test('with features.requestUri off, a client registering request_uris is refused at start-up, and so is requestUri without requestObjects', async () => {
    expect(startupError({ features: { requestUri: false }, clients: [{ ...web, request_uris: ['https://app.example.com/r'] }] }))
      .toMatch(/clients\[0\]\.request_uris.*features\.requestUri is off/);
    expect(startupError({ features: { requestUri: true, requestObjects: false } })).toMatch(/features\.requestUri: needs features\.requestObjects/);
  });

  test('dynamic registration refuses request_uris that are not URLs', async () => {
    await expect(register(f, { request_uris: ['not a url'] })).rejects.toMatchObject({ error: 'invalid_client_metadata' });
  });
});

test('off (features.requestObjects: false): discovery says request_uri is not supported, and it is refused', async () => {
  const g = await startCertOp({ features: { requestObjects: false, clientCredentials: true } });
  try {
    const meta = await (await fetch(`${g.op.issuer}/.well-known/openid-configuration`)).json();
    expect(meta.request_uri_parameter_supported).toBe(false);
    expect(meta.require_request_uri_registration).toBeUndefined();
    const req = await codeRequest(g, {}, g.web);
    const page = await browserOf(g).open(authUrl(g, { ...req.params, request_uri: 'https://rp.example/request.jwt' }, g.web));
    expect(callbackOf(page).searchParams.get('error')).toBe('request_uri_not_supported');
  } finally {
    await g.op.close();
  }
});

describe("plain Node, oidc-provider's SSRF guard installed", () => {
  const check = plainNodeChild<{ fetched: boolean; error: string | null; description: string | null }>('request-uri', ['request-uri', 'private-hosts', 'errors', 'hourly-warning'], () => CHILD);

  test('a request_uri on a private address (127.0.0.1) is refused, and nothing is fetched', async () => {
    const result = await check(null);
    expect(result).toMatchObject({ fetched: false, error: 'invalid_request_uri' });
    // the same words as a timeout or a closed port: the SSRF guard's reason is only in the log
    expect(result.description).toMatch(/^the request_uri at 127\.0\.0\.1:\d+ could not be fetched \(the OP's log says why\)$/);
  }, 30_000);

  test("listed in allowPrivateHosts, it is fetched and goes on to oidc-provider's request-object checks", async () => {
    expect(await check(['127.0.0.1'])).toEqual({ fetched: true, error: null, description: null });
  }, 30_000);
});

/** The child: a real oidc-provider with request-uri.ts's hooks, asked for a request object on 127.0.0.1. */
const CHILD = `
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import { SignJWT } from 'jose';
import { parseAllowedHosts, privateHostsFetch } from './src/private-hosts.js';
import { requestUriByReference, withRequestUris } from './src/request-uri.js';
const allow = JSON.parse(process.argv[2]);
let fetched = false;
const objects = createServer((req, res) => { fetched = true; res.end(body); });
await new Promise((r) => objects.listen(0, '127.0.0.1', r));
const uri = 'http://127.0.0.1:' + objects.address().port + '/request.jwt';
const issuer = 'http://localhost:1/op';
const secret = 'secret-secret-secret-secret-secret';
const body = await new SignJWT({ iss: 'c', aud: issuer, client_id: 'c', response_type: 'code', scope: 'openid', redirect_uri: 'http://localhost/cb', state: 's', nonce: 'n' })
  .setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
const provider = new Provider(issuer, withRequestUris({
  clients: [{ client_id: 'c', client_secret: secret, redirect_uris: ['http://localhost/cb'], request_uris: [uri], request_object_signing_alg: 'HS256' }],
  features: { devInteractions: { enabled: false }, requestObjects: { enabled: true } },
  ...(allow ? { fetch: privateHostsFetch(parseAllowedHosts(allow)) } : {}),
}, issuer));
requestUriByReference(provider, issuer, new Set(['c']), allow ? parseAllowedHosts(allow) : undefined); // 'c' is a static client
const server = createServer(provider.callback());
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const res = await fetch('http://127.0.0.1:' + server.address().port + '/auth?client_id=c&response_type=code&scope=openid&redirect_uri=' + encodeURIComponent('http://localhost/cb') + '&state=s&request_uri=' + encodeURIComponent(uri), { redirect: 'manual' });
const location = new URL(res.headers.get('location'), 'http://localhost');
objects.close(); server.close();
console.log(JSON.stringify({ fetched, error: location.searchParams.get('error'), description: location.searchParams.get('error_description') }));
process.exit(0);
`;
