/**
 * What a login keeps in the session (the compact form) and what `req.oidc` shows of it: the same
 * `authentication`, `user`, `idTokenClaims` and `accessToken` as the login made, whatever the form.
 */
import { createHmac } from 'node:crypto';
import type session from 'express-session';
import { readStoredLogin, type Authentication } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';

let t: TestRp;
let made: Authentication[] = [];

beforeAll(async () => {
  t = await startRp({
    routes: (app) => app.get('/whoami', (req, res) => void res.json({
      authentication: req.oidc.authentication ?? null,
      user: req.oidc.user ?? null,
      idTokenClaims: req.oidc.idTokenClaims ?? null,
      accessToken: req.oidc.accessToken ?? null,
      isAuthenticated: req.oidc.isAuthenticated(),
    })),
  });
  // what the core's finalize returns at each callback
  const finalize = t.relyingParty.finalize.bind(t.relyingParty);
  t.relyingParty.finalize = async (...args) => {
    const auth = await finalize(...args);
    made.push(structuredClone(auth));
    return auth;
  };
});
beforeEach(() => {
  made = [];
});
afterAll(() => t.close());

const stored = (id: string): Promise<session.SessionData> => new Promise((resolve, reject) => t.store.get(id, (err, s) => (err ? reject(err) : resolve(s!))));
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('the login in the session', () => {
  test('keeps the ID token once: no user, no idTokenClaims copies; authTime from the token', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    const [id] = await t.authenticatedSessions();
    const auth = (await stored(id!)).oidc!.auth as Record<string, unknown>;
    expect(Object.keys(auth).sort()).toEqual(['accessToken', 'claims', 'idToken', 'provider', 'refreshToken']);
    expect(auth.claims).toEqual({ name: 'Alice Liddell', email: 'alice@example.org', email_verified: true, groups: ['staff', 'admin'] });
    expect(auth.accessToken).not.toHaveProperty('tokenType'); // "bearer"
    const login = readStoredLogin(auth as never);
    expect(login.authTime).toBe(login.idTokenClaims!.iat); // no auth_time: when the OP issued the ID token
    expect(login.authTime).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  test('req.oidc shows exactly what the login made (authentication, user, idTokenClaims, accessToken)', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect(made).toHaveLength(1);
    const auth = json(made[0]!);
    const res = await agent.get('/whoami');
    expect(res.body.authentication).toEqual(auth);
    expect(res.body.user).toEqual(auth.user);
    expect(res.body.idTokenClaims).toEqual(auth.idTokenClaims);
    expect(res.body.accessToken).toEqual(auth.accessToken); // isExpired() is not JSON
    expect(res.body.isAuthenticated).toBe(true);
  });

  test('after a refresh, req.oidc still shows the login (new tokens, same user and authTime)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const before = (await agent.get('/whoami')).body;
    await agent.post('/auth/refresh').expect(200);
    const after = (await agent.get('/whoami')).body;
    expect(after.user).toEqual(before.user);
    expect(after.authentication.authTime).toBe(before.authentication.authTime);
    expect(after.accessToken.value).not.toBe(before.accessToken.value);
    expect(after.authentication.refreshToken).not.toBe(before.authentication.refreshToken);
  });

  test('a session written by an earlier version (the whole Authentication) still works', async () => {
    const agent = t.agent();
    await t.login(agent);
    const whole = json(made[0]!);
    // a session as the previous version stored it, under a cookie signed like express-session's
    const id = 'legacy-session-id-0123456789abcdef';
    await new Promise<void>((resolve, reject) => t.store.set(id, { cookie: { originalMaxAge: null, path: '/', httpOnly: true }, oidc: { auth: whole } } as never, (err) => (err ? reject(err) : resolve())));
    const signed = `s:${id}.${createHmac('sha256', 'test-session-secret').update(id).digest('base64').replace(/=+$/, '')}`;
    const res = await t.agent().get('/whoami').set('cookie', `sid=${encodeURIComponent(signed)}`);
    expect(res.body.authentication).toEqual(whole);
    expect((await t.agent().get('/me').set('cookie', `sid=${encodeURIComponent(signed)}`)).body).toEqual(whole.user);
  });
});
