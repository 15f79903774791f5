/**
 * OpenID Connect RP certification, Back-Channel Logout RP and RP-Initiated Logout RP profiles,
 * against the real oidc-provider (which sends real logout tokens), plus forged logout tokens
 * signed with the OP's own key for the misbehaviours (rp-backchannel-rpinitlogout-lt-*).
 * A refused logout token answers 400 and leaves the login alone; an accepted one ends it.
 */
import { SignJWT, type JWTPayload } from 'jose';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';
import { coordinationOf, hashedKey } from '../src/coordination.js';
import { logoutJtiKey } from '../src/session.js';
import { clearStore, expectNoLogin } from './support/expect.js';
import { eventually, LOGOUT_EVENT as EVENT, logoutToken as signLogoutToken } from './support/logout-token.js';

let t: TestRp;
beforeAll(async () => {
  t = await startRp();
});
beforeEach(() => clearStore(t));
afterAll(() => t.close());

/** A well-formed logout token for alice, signed by the OP's key, with `claims` changed. */
const logoutToken = (claims: JWTPayload = {}, header: Record<string, unknown> = {}) => signLogoutToken(t.op, { sub: 'alice', ...claims }, header);

const post = (token: string) => t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token });


describe('rp-backchannel-rpinitlogout', () => {
  test('RP-initiated logout in one browser tab ends, through the OP\'s back-channel call, the other RP session of the same OP session', async () => {
    const browser = t.op.browser();
    const tab1 = t.agent();
    const tab2 = t.agent();
    await t.login(tab1, { browser });
    await t.login(tab2, { browser }); // single sign-on: same OP session (sid)
    expect(await t.authenticatedSessions()).toHaveLength(2);
    const res = await tab1.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    const back = await browser.endSession(res.headers.location);
    expect(back.href).toBe(`${t.baseURL}/bye?state=${new URL(res.headers.location).searchParams.get('state')}`);
    await eventually(async () => (await t.authenticatedSessions()).length === 0);
    await expectNoLogin(t, tab1);
    await expectNoLogin(t, tab2);
  });

  test('the back-channel answer is 200 with Cache-Control: no-store (OIDC Back-Channel Logout §2.8)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await post(await logoutToken());
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    await expectNoLogin(t, agent);
  });
});

describe('rp-backchannel-rpinitlogout-lt-*: refused, the login stays', () => {
  let agent: ReturnType<TestRp['agent']>;
  beforeEach(async () => {
    agent = t.agent();
    await t.login(agent);
  });
  afterEach(async () => {
    expect((await agent.get('/me')).status).toBe(200);
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

  test('lt-alg-none: an unsigned logout token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: 'none', typ: 'logout+jwt' })}.${b64({ iss: t.op.issuer, aud: CLIENT_ID, iat: now, jti: 'x', sub: 'alice', events: EVENT })}.`;
    const res = await post(token);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });

  test('lt-wrong-alg: HS256 over the client secret (an algorithm the OP does not sign with)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: t.op.issuer, aud: CLIENT_ID, iat: now, jti: 'x', sub: 'alice', events: EVENT })
      .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' })
      .sign(new TextEncoder().encode(CLIENT_SECRET));
    const res = await post(token);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });

  test.each([['a string', 'yes'], ['null', null], ['an array', []]])('lt-wrong-event: the logout event member is not a JSON object (%s; null was taken, certification probe F2)', async (_what, value) => {
    const res = await post(await logoutToken({ events: { 'http://schemas.openid.net/event/backchannel-logout': value } }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });

  test('lt-wrong-event: events itself is not a JSON object (an array holding the member)', async () => {
    const res = await post(await logoutToken({ events: [{ 'http://schemas.openid.net/event/backchannel-logout': {} }] as unknown as Record<string, unknown> }));
    expect(res.status).toBe(400);
  });

  test('lt-missing-jti: a logout token without jti (REQUIRED, §2.4)', async () => {
    const res = await post(await logoutToken({ jti: undefined }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
    expect(res.body.error_description).toMatch(/jti/);
  });

  test('lt-too-old: issued more than 10 minutes ago, though not expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await post(await logoutToken({ iat: now - 700, exp: now + 3600 }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
    // the likely cause is named: an OP whose clock is behind this server's
    expect(res.body.error_description).toMatch(/issued 70\d s ago by this server's clock: if the OP sent it just now, the clocks of this server and the OP differ: keep both in time \(NTP/);
  });

  test('lt-expired: past its exp, though issued a minute ago', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await post(await logoutToken({ iat: now - 60, exp: now - 31 }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });

  test('lt-iat-in-future: "issued" an hour from now', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await post(await logoutToken({ iat: now + 3600, exp: now + 7200 }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });

  test('from an OP whose clock is 45 s ahead: refused, saying the clocks differ and by how much', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await post(await logoutToken({ iat: now + 45, exp: now + 165 }));
    expect(res.status).toBe(400);
    expect(res.body.error_description).toMatch(/"iat" .*it is 4[456] s ahead of this server's clock \(30 s are tolerated\), so the clocks of this server and the OP differ: keep both in time \(NTP/);
  });

  test('an ID token of this OP offered as a logout token (no logout event)', async () => {
    const [id] = await t.authenticatedSessions();
    const idToken = await new Promise<string>((resolve) => t.store.get(id, (_e, s) => resolve(s!.oidc!.auth!.idToken!)));
    const res = await post(idToken);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_logout_token');
  });
});

describe('logout token replay', () => {
  test('the same logout token (same jti) sent again is refused, and does not end the user\'s new login', async () => {
    const first = t.agent();
    await t.login(first);
    const token = await logoutToken(); // sub-only: would end every login of alice
    expect((await post(token)).status).toBe(200);
    await expectNoLogin(t, first);

    const again = t.agent();
    await t.login(again);
    const replay = await post(token);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_logout_token');
    expect(replay.body.error_description).toMatch(/replay/);
    expect((await again.get('/me')).status).toBe(200);
  });

  test('a token without exp (REQUIRED since Back-Channel Logout 1.0 errata 1, but Glewlwyd, an OpenID-certified OP, sends none) is taken within 10 minutes of its iat', async () => {
    const a = t.agent();
    await t.login(a);
    expect((await post(await logoutToken({ exp: undefined }))).status).toBe(200);
    await expectNoLogin(t, a);
  });

  test('two different tokens (different jti) are both accepted', async () => {
    const a = t.agent();
    await t.login(a);
    expect((await post(await logoutToken())).status).toBe(200);
    const b = t.agent();
    await t.login(b);
    expect((await post(await logoutToken())).status).toBe(200);
    await expectNoLogin(t, b);
  });

  test('the remembered jti expires with the store (it is kept only as long as the token could be accepted)', async () => {
    // rp()'s records for a MemoryStore are kept in this process (coordinationOf), under the jti's hash: the key size does not depend on the sender
    const coordination = coordinationOf({ options: {} }, t.store);
    const key = logoutJtiKey('op', hashedKey('', 'jti-expiry-check'));
    const sent = Date.now();
    await post(await logoutToken({ jti: 'jti-expiry-check' }));
    expect(await coordination.get(key)).toBeDefined();
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(sent + 9 * 60_000);
      expect(await coordination.get(key)).toBeDefined();
      now.mockReturnValue(sent + 11 * 60_000 + 1000);
      expect(await coordination.get(key)).toBeUndefined();
    } finally {
      now.mockRestore();
    }
  });
});
