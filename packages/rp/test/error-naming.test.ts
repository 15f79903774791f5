/**
 * Where an error of a login or a refresh says it happened, and what it advises (atProvider() in
 * errors.ts): found by review-58 of the errors that name the provider and the endpoint.
 */
import { createServer } from 'node:http';
import request from 'supertest';
import { close, listen } from './support/rp-app.js';
import { startStubRp } from './support/stub-rp.js';

const deadPort = async (): Promise<number> => {
  const s = createServer();
  const port = Number(new URL(await listen(s)).port);
  await close(s);
  return port;
};

// F1: the OP's jwks_uri cannot be reached (keySets.prepare runs *before* the code is redeemed), and the
// message blames the token endpoint, which was never called
test('a jwks_uri that refuses connections is not reported as the token endpoint', async () => {
  const port = await deadPort();
  const t = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789' });
  t.stub.metadata = { jwks_uri: `http://127.0.0.1:${port}/jwks` };
  try {
    const res = await t.callback(request.agent(t.server).set('accept', 'application/json'));
    expect(res.body.error).toBe('op_unreachable');
    // the token endpoint was never called
    expect(t.stub.requests.filter((r) => r.path === '/token')).toHaveLength(0);
    expect(res.body.error_description).not.toContain(`token endpoint ${t.stub.issuer}/token`);
    expect(res.body.error_description).toContain(`the OP's keys at http://127.0.0.1:${port}/jwks could not be downloaded`);
  } finally {
    await t.close();
  }
});

// F6: a refresh whose answer the OP gave (the grant worked) but whose ID token fails the RP's checks
// (here: for another subject) becomes refresh_failed, and whatToDo() advises "The OP no longer accepts
// this login's refresh token (revoked, expired or used already)": wrong, and it hides a mix-up at the OP
test('a refreshed ID token for another user is not explained as a revoked/expired refresh token', async () => {
  const t = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789', scope: 'openid offline_access' } as never);
  t.stub.refreshToken = 'stub-refresh-token';
  try {
    const agent = request.agent(t.server).set('accept', 'application/json');
    expect((await t.callback(agent)).status).toBe(302);
    t.stub.idToken = (d) => t.stub.sign({ ...d, sub: 'someone-else', nonce: undefined });
    const res = await agent.post('/auth/refresh').set('origin', `http://127.0.0.1:${(t.server.address() as { port: number }).port}`);
    expect(res.body.error).toBe('refresh_failed');
    expect(res.body.error_description).not.toMatch(/revoked, expired or used already/);
  } finally {
    await t.close();
  }
});

// F3 (review-58): the "advised" regex runs over the OP's own error_description: an OP text containing "must "
// (or "try again") suppresses rp()'s advice
test('an OP description with "must " does not drop the "sign in again" advice of a refused code', async () => {
  const t = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789' });
  t.stub.tokenAnswer = { status: 400, body: '{"error":"invalid_grant","error_description":"the code must not be reused"}', headers: { 'content-type': 'application/json' } };
  try {
    const res = await t.callback(request.agent(t.server).set('accept', 'application/json'));
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.error_description).toMatch(/sign in again/i);
  } finally {
    await t.close();
  }
});

// F2 (review-58): a front-channel error that parRequiredError rewraps (cause is then an RpError, not the
// AuthorizationResponseError) is attributed to the token endpoint
test('"PAR required" sent back through the browser is not reported as the token endpoint', async () => {
  const t = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789' });
  try {
    const agent = request.agent(t.server).set('accept', 'application/json');
    const login = await agent.get('/auth/login/stub');
    const state = new URL(login.headers.location).searchParams.get('state')!;
    const res = await agent.get(`/auth/callback/stub?error=invalid_request&error_description=${encodeURIComponent('Pushed Authorization Request must be used')}&state=${state}`);
    expect(res.body.error_description).toMatch(/pushedAuthorizationRequests: true/);
    expect(t.stub.requests.filter((r) => r.path === '/token')).toHaveLength(0);
    expect(res.body.error_description).not.toContain('token endpoint');
  } finally {
    await t.close();
  }
});
