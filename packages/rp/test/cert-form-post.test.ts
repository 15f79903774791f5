/**
 * OpenID Connect RP certification, Form Post RP profile (response_mode=form_post, code and
 * id_token) and rp-nonce-unless-code-flow, against the real oidc-provider: the OP answers with its
 * auto-submitting form, the test posts those fields to the RP callback as the browser would.
 */
import express from 'express';
import { startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

describe('rp-response_mode-form_post with the code flow', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ provider: { responseMode: 'form_post' } });
  });
  beforeEach(() => clearStore(t));
  afterAll(() => t.close());

  test('the OP posts code and state to the callback, and the user is logged in', async () => {
    const agent = t.agent();
    const start = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    expect(start.searchParams.get('response_mode')).toBe('form_post');
    expect(start.searchParams.get('response_type')).toBe('code');
    const { action, fields } = await t.op.browser().formPost(start);
    expect(action.href).toBe(`${t.baseURL}/auth/callback/op`);
    expect(Object.keys(fields).sort()).toEqual(['code', 'iss', 'state']);
    const res = await agent.post(action.pathname).type('form').send(fields);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/me');
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('rp-response_mode-form_post-error: the OP posts an error (the user said no): a clear 400 op_error page, no login', async () => {
    const agent = t.agent();
    const start = (await agent.get('/auth/login/op?returnTo=/me')).headers.location;
    const { action, fields } = await t.op.browser().formPost(start, { deny: true });
    expect(fields.error).toBe('access_denied');
    expect(fields.state).toBe(new URL(start).searchParams.get('state'));
    const res = await agent.post(action.pathname).type('form').set('accept', 'text/html').send(fields);
    expect(res.status).toBe(400);
    expect(res.text).toContain('op_error');
    expect(res.text).toContain('access_denied');
    await expectNoLogin(t, agent);
  });

  test('the same posted fields a second time do not log in again', async () => {
    const agent = t.agent();
    const start = (await agent.get('/auth/login/op')).headers.location;
    const { action, fields } = await t.op.browser().formPost(start);
    expect((await agent.post(action.pathname).type('form').send(fields)).status).toBe(303);
    const other = t.agent();
    const replay = await other.post(action.pathname).type('form').send({ ...fields, oidc_resubmitted: '1' });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_state');
    expect((await other.get('/me')).status).toBe(401);
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });
});

describe.each([
  ['express.raw()', () => express.raw({ type: '*/*' })],
  ['express.text({ type: \'*/*\' })', () => express.text({ type: '*/*' })],
])('an app-wide %s before rp() (raw bodies kept for webhook signatures)', (_label, parser) => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ provider: { responseMode: 'form_post' }, before: (app) => app.use(parser()) });
  });
  afterAll(() => t.close());

  test('the posted callback still signs the user in (it used to find no state and post itself again and again)', async () => {
    const agent = t.agent();
    const start = (await agent.get('/auth/login/op?returnTo=/me')).headers.location;
    const { action, fields } = await t.op.browser().formPost(start);
    const res = await agent.post(action.pathname).type('form').send(fields);
    expect(res.status).toBe(303);
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });
});

describe('response_type=id_token with form_post', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({
      // oidc-provider allows implicit over http only for native clients on loopback
      client: { response_types: ['id_token'], grant_types: ['implicit'], application_type: 'native' },
      op: { config: { responseTypes: ['code', 'id_token'] } },
      provider: { responseType: 'id_token', scope: 'openid profile email', clientSecret: undefined },
    });
  });
  beforeEach(() => clearStore(t));
  afterAll(() => t.close());

  async function idTokenPost(agent: ReturnType<TestRp['agent']>): Promise<{ start: URL; action: URL; fields: Record<string, string> }> {
    const start = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    return { start, ...(await t.op.browser().formPost(start)) };
  }

  test('rp-nonce-unless-code-flow: the request carries a nonce and form_post; the posted ID token logs in', async () => {
    const agent = t.agent();
    const { start, action, fields } = await idTokenPost(agent);
    expect(start.searchParams.get('response_type')).toBe('id_token');
    expect(start.searchParams.get('response_mode')).toBe('form_post');
    expect(start.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
    expect(start.searchParams.has('code_challenge')).toBe(false); // PKCE binds a code; there is none here
    expect(fields.id_token).toMatch(/^ey/);
    const res = await agent.post(action.pathname).type('form').send(fields);
    expect(res.status).toBe(303);
    // the scope's claims come in the ID token itself (no userinfo call without an access token)
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice', email: 'alice@example.org', name: 'Alice Liddell' });
  });

  test('rp-nonce-invalid (implicit): an ID token issued for another login (other nonce) does not log in', async () => {
    const stolen = await idTokenPost(t.agent());
    const victim = t.agent();
    const mine = await idTokenPost(victim);
    const res = await victim.post(mine.action.pathname).type('form').send({ ...mine.fields, id_token: stolen.fields.id_token });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_id_token');
    expect(res.body.error_description).toMatch(/nonce/);
    await expectNoLogin(t, victim);
  });

  test('a posted ID token with a tampered payload (bad signature) does not log in', async () => {
    const agent = t.agent();
    const { action, fields } = await idTokenPost(agent);
    const [h, p, sig] = fields.id_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'bob' })).toString('base64url')}.${sig}`;
    const res = await agent.post(action.pathname).type('form').send({ ...fields, id_token: forged });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_id_token');
    await expectNoLogin(t, agent);
  });

  test('a callback without id_token does not log in', async () => {
    const agent = t.agent();
    const { action, fields } = await idTokenPost(agent);
    const { id_token: _dropped, ...rest } = fields;
    const res = await agent.post(action.pathname).type('form').send(rest);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.error).toEqual(expect.any(String));
    await expectNoLogin(t, agent);
  });
});
