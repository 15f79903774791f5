/**
 * The `claims` parameter (OIDC Core 5.5) nests 4 levels at most; one nested thousands of levels deep
 * (a few KB, under every size limit) overflowed the stack of what stores a pushed request: a 500
 * logged as a server error. Now 400 invalid_request, at PAR and at /auth alike.
 */
import express from 'express';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const SECRET = 'app-secret-that-is-long-enough-0123456789';
const app = express().use('/op', op({
  issuer: 'https://id.example.com/op', accounts, adapter: memoryAdapter(), ...generateKeys(),
  clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: ['https://app.example.com/cb'] }],
}));
const params = (claims: unknown) => ({
  client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: 'https://app.example.com/cb', state: 's', nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', claims: JSON.stringify(claims),
});
const nested = (levels: number) => {
  let deep: unknown = { essential: true };
  for (let i = 0; i < levels; i += 1) deep = { a: deep };
  return { id_token: { email: deep } };
};
const par = (claims: unknown) => request(app).post('/op/request').set('host', 'id.example.com')
  .auth('app', SECRET).type('form').send(params(claims));

describe('a claims parameter nested too deep', () => {
  test('at PAR: 400 invalid_request saying so, not a 500', async () => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const res = await par(nested(2500));
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('nests deeper than 8 levels') });
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
  });

  test('at /auth: the refusal goes back to the client as invalid_request', async () => {
    const res = await request(app).get('/op/auth').set('host', 'id.example.com').query(params(nested(50)));
    const to = new URL(res.headers.location);
    expect([to.origin + to.pathname, to.searchParams.get('error')]).toEqual(['https://app.example.com/cb', 'invalid_request']);
  });

  test('the deepest claims OIDC Core 5.5 shows are taken', async () => {
    const res = await par({ id_token: { acr: { essential: true, values: ['urn:mace:incommon:iap:silver'] } }, userinfo: { email: { essential: true }, nickname: null } });
    expect(res.status).toBe(201);
  });
});
