/**
 * Dynamic registration on an OP served over https: a web client's redirect_uris over https only,
 * loopback hosts aside (RFC 6749 §3.1.2.1, RFC 9700 §2.1). oidc-provider itself refuses http only for
 * the implicit flow, so a code (and with form_post, tokens) could be sent over plain http.
 */
import express from 'express';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op, type OpOptions } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const keys = generateKeys();

function appWith(extra: Partial<OpOptions> = {}, issuer = 'https://id.example.com/op') {
  const adapter = memoryAdapter();
  const app = express().use('/op', op({
    issuer, accounts, adapter, ...keys, features: { registration: true },
    clients: [{ client_id: 'static', client_secret: 'static-secret-that-is-long-enough-0123456', redirect_uris: ['http://intranet.example/cb'] }],
    ...extra,
  }));
  return app;
}

const register = (app: express.Express, body: object) => request(app).post('/op/reg')
  .set('host', 'id.example.com').set('x-forwarded-proto', 'https').set('accept', 'application/json').send(body);

describe('dynamic registration on an https OP', () => {
  test('a web client registering an http redirect URI is refused with invalid_redirect_uri, naming the URI and the fix', async () => {
    const app = appWith();
    const res = await register(app, { redirect_uris: ['https://ok.example/cb', 'http://app.example.com/cb'] });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_redirect_uri');
    expect(res.body.error_description).toContain('"http://app.example.com/cb"');
    expect(res.body.error_description).toContain('https://app.example.com/cb');
    expect(res.body.client_id).toBeUndefined();
  });

  test('https, and http on loopback hosts (a developer\'s machine), are registered', async () => {
    const app = appWith();
    for (const uri of ['https://app.example.com/cb', 'http://127.0.0.1:8080/cb', 'http://localhost:3000/cb', 'http://[::1]/cb']) {
      const res = await register(app, { redirect_uris: [uri] });
      expect([uri, res.status]).toEqual([uri, 201]);
      expect(res.body.redirect_uris).toEqual([uri]);
    }
  });

  test('a native client keeps oidc-provider\'s rules (custom schemes, http on loopback)', async () => {
    const app = appWith();
    const res = await register(app, { application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: ['com.example.app:/cb', 'http://127.0.0.1/cb'] });
    expect(res.status).toBe(201);
  });

  test('an RFC 7592 update to an http redirect URI is refused and the client keeps its own', async () => {
    const app = appWith({ provider: { features: { registrationManagement: { enabled: true } } } });
    const created = await register(app, { redirect_uris: ['https://app.example.com/cb'] });
    expect(created.status).toBe(201);
    const path = new URL(created.body.registration_client_uri).pathname;
    const auth = `Bearer ${created.body.registration_access_token}`;
    const updated = await request(app).put(path).set('host', 'id.example.com').set('authorization', auth)
      .send({ client_id: created.body.client_id, client_secret: created.body.client_secret, redirect_uris: ['http://app.example.com/cb'] });
    expect(updated.status).toBe(400);
    expect(updated.body.error).toBe('invalid_redirect_uri');
    const read = await request(app).get(path).set('host', 'id.example.com').set('authorization', auth);
    expect(read.body.redirect_uris).toEqual(['https://app.example.com/cb']);
  });

  test('the app\'s own extraClientMetadata properties and validator keep working', async () => {
    const seen: string[] = [];
    const app = appWith({
      provider: {
        extraClientMetadata: {
          properties: ['tenant'],
          validator(_ctx: unknown, key: string, value: unknown) {
            seen.push(key);
            if (key === 'tenant' && value !== undefined && value !== 'acme') throw new Error('tenant must be acme');
          },
        },
      },
    });
    const res = await register(app, { redirect_uris: ['https://app.example.com/cb'], tenant: 'acme' });
    expect(res.status).toBe(201);
    expect(res.body.tenant).toBe('acme');
    expect(seen).toContain('tenant');
    expect(seen).not.toContain('redirect_uris');
    expect((await register(app, { redirect_uris: ['http://app.example.com/cb'], tenant: 'acme' })).body.error).toBe('invalid_redirect_uri');
  });

  test('an http OP (development) registers http redirect URIs as before; clients in `clients` stay as configured', async () => {
    const app = appWith({}, 'http://127.0.0.1:4000/op');
    const res = await request(app).post('/op/reg').set('host', '127.0.0.1:4000').send({ redirect_uris: ['http://app.example.com/cb'] });
    expect(res.status).toBe(201);
    const https = appWith();
    const auth = await request(https).get('/op/auth').set('host', 'id.example.com')
      .query({ client_id: 'static', redirect_uri: 'http://intranet.example/cb', response_type: 'code', scope: 'openid', state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    expect(auth.status).toBe(303);
  });
});
