/**
 * op()'s checks in the interaction policy: they hold with the app's own `provider.interactions.policy`
 * too, and leave PAR's per-request redirect URIs (RFC 9126 §2.4, `allowUnregisteredRedirectUris`) alone.
 * The claims hook keeps oidc-provider's own member check.
 */
import express from 'express';
import request from 'supertest';
import { interactionPolicy } from 'oidc-provider';
import { generateKeys, memoryAccounts, memoryAdapter, op, type OpOptions } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const SECRET = 'app-secret-that-is-long-enough-0123456789';
const keys = generateKeys();
const appWith = (extra: Partial<OpOptions> = {}) => express().use('/op', op({
  issuer: 'https://id.example.com/op', accounts, adapter: memoryAdapter(), ...keys,
  clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: ['https://app.example.com/cb'] }],
  ...extra,
}));
const params = (extra: Record<string, string> = {}) => ({
  client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: 'https://app.example.com/cb', state: 's', nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra,
});
const auth = (app: express.Express, query: Record<string, string>) => request(app).get('/op/auth').set('host', 'id.example.com').query(query);
const par = (app: express.Express, body: Record<string, string>) => request(app).post('/op/request').set('host', 'id.example.com').auth('app', SECRET).type('form').send(body);

test('a pushed request with a redirect_uri the client did not register (allowed by the OP) goes on to the login form', async () => {
  const app = appWith({ provider: { features: { pushedAuthorizationRequests: { allowUnregisteredRedirectUris: true } } } });
  const pushed = await par(app, params({ redirect_uri: 'https://app.example.com/per-request' }));
  expect(pushed.status).toBe(201);
  const res = await auth(app, { client_id: 'app', request_uri: pushed.body.request_uri });
  expect(res.status).toBe(303);
  expect(res.headers.location).toMatch(/\/op\/interaction\//);
});

test('the app\'s own interaction policy keeps op()\'s checks (a request asking no scope the OP knows is refused at once)', async () => {
  const policy = interactionPolicy.base();
  policy.add(new interactionPolicy.Prompt({ name: 'mfa', requestable: true }), 1);
  const app = appWith({ provider: { interactions: { policy } } });
  const { nonce: _nonce, ...noNonce } = params({ scope: 'openid,email' });
  const res = await auth(app, noNonce);
  const to = new URL(res.headers.location);
  expect(to.searchParams.get('error')).toBe('invalid_scope');
  // a second op() given the same policy object does not add them twice
  appWith({ provider: { interactions: { policy } } });
  expect(policy.get('login')!.checks.filter((c) => c.reason === 'no_known_scope')).toHaveLength(1);
});

test('a claims member that is neither null nor an object is 400 invalid_request (OIDC Core 5.5), at /auth and at PAR, never a 500', async () => {
  const app = appWith();
  const res = await auth(app, params({ claims: JSON.stringify({ id_token: { sub: 'alice' } }) }));
  const to = new URL(res.headers.location);
  expect([to.searchParams.get('error'), to.searchParams.get('error_description')]).toEqual(['invalid_request', 'claims.id_token members must be null or objects']);
  for (const claims of [{ id_token: { email: 'yes please' } }, { userinfo: { email: 1 } }, { id_token: { acr: ['urn:x'] } }]) {
    const pushed = await par(app, params({ claims: JSON.stringify(claims) }));
    expect([claims, pushed.status, pushed.body.error]).toEqual([claims, 400, 'invalid_request']);
  }
});
