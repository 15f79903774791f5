/**
 * A client registered with `require_pushed_authorization_requests` that sends its signed request object
 * by value straight to the authorization endpoint (no PAR) is refused there, and the redirect_uri being
 * inside the request object, oidc-provider cannot send the error back: op() draws the page. Before, it said
 * only "This request cannot be completed" with oidc-provider's "Pushed Authorization Request must be used":
 * not which client, nor where to push. Now it names the client, the pushed_authorization_request_endpoint
 * to POST to first, and @openid-express/rp's option; HTML for browsers, JSON when asked; and, under
 * NODE_ENV=production, nothing of the request object or the client's secret.
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { generateKeys, memoryAdapter } from '@openid-express/op';
import { client, insecure, REGISTRATION_TOKEN, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const OP_PORT = 42102;

let f: FlowFixture;
let par: { config: client.Configuration; url: URL; requestObject: string; secret: string };
const env = process.env.NODE_ENV;
beforeAll(async () => {
  process.env.NODE_ENV = 'production';
  jest.spyOn(console, 'warn').mockImplementation(() => undefined); // the memory store in production
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(OP_PORT, '127.0.0.1', resolve));
  f = await startFlowFixture(memoryAdapter(), { ...generateKeys() }, { server });
  // registered on the fly: oidc-provider structuredClones static clients, which breaks its check of `jwks` in jest's realm
  const keys = await generateKeyPair('ES256', { extractable: true });
  const config = await client.dynamicClientRegistration(new URL(f.op.issuer), {
    client_name: 'Orders', redirect_uris: [f.redirectUri], jwks: { keys: [{ ...(await exportJWK(keys.publicKey)), alg: 'ES256', use: 'sig' }] },
    request_object_signing_alg: 'ES256', require_pushed_authorization_requests: true,
  }, client.ClientSecretBasic(), { ...insecure, initialAccessToken: REGISTRATION_TOKEN });
  const url = await client.buildAuthorizationUrlWithJAR(config, {
    redirect_uri: f.redirectUri, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  }, keys.privateKey);
  par = { config, url, requestObject: url.searchParams.get('request')!, secret: config.clientMetadata().client_secret as string };
}, 60_000);
afterAll(async () => {
  process.env.NODE_ENV = env;
  jest.restoreAllMocks();
  await f?.op.close();
});

test('a browser gets a page naming the client, the endpoint to push the request to first, and the rp() option; nothing of the request object or the secret', async () => {
  expect(par.url.searchParams.get('redirect_uri')).toBeNull(); // only inside the request object: no way back to the client
  const res = await fetch(par.url, { headers: { accept: 'text/html' }, redirect: 'manual' });
  const html = await res.text();
  expect([res.status, res.headers.get('content-type')]).toEqual([400, expect.stringMatching(/^text\/html/)]);
  // before: "This request cannot be completed … Pushed Authorization Request must be used"
  expect(html).toContain('Orders');
  expect(html).toContain(par.config.clientMetadata().client_id);
  expect(html).toContain(`${f.op.issuer}/request`);
  expect(html).toContain('pushed_authorization_request_endpoint');
  expect(html).toContain('pushedAuthorizationRequests: true');
  for (const secret of [par.requestObject, par.requestObject.split('.')[1]!, par.requestObject.split('.')[2]!, par.secret]) expect(html).not.toContain(secret);
});

test('a client asking for JSON gets invalid_request whose description says the same', async () => {
  const res = await fetch(par.url, { headers: { accept: 'application/json' }, redirect: 'manual' });
  expect([res.status, res.headers.get('content-type'), res.headers.get('cache-control')]).toEqual([400, expect.stringMatching(/^application\/json/), 'no-store']);
  const body = await res.json() as { error: string; error_description: string };
  expect(body.error).toBe('invalid_request');
  expect(body.error_description).toContain(par.config.clientMetadata().client_id);
  expect(body.error_description).toContain(`pushed_authorization_request_endpoint ${f.op.issuer}/request`);
  expect(body.error_description).toContain('pushedAuthorizationRequests: true');
  expect(JSON.stringify(body)).not.toContain(par.requestObject.split('.')[1]!);
  expect(JSON.stringify(body)).not.toContain(par.secret);
});

test('pushed first, the same request object is taken: the sign-in starts', async () => {
  const pushed = await client.buildAuthorizationUrlWithPAR(par.config, { request: par.requestObject });
  const res = await fetch(pushed, { headers: { accept: 'text/html' }, redirect: 'manual' });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toMatch(/\/interaction\//);
});
