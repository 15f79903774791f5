import { startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

let t: TestRp;
beforeAll(async () => {
  t = await startRp();
});
beforeEach(() => clearStore(t));
afterAll(() => t.close());

describe('GET /auth/logout', () => {
  test('ends the local session, then sends the browser to the OP end_session_endpoint with id_token_hint', async () => {
    const browser = t.op.browser();
    const agent = t.agent();
    await t.login(agent, { browser });
    const res = await agent.get('/auth/logout?returnTo=/bye');
    expect(res.status).toBe(302);
    const url = new URL(res.headers.location);
    expect(`${url.origin}${url.pathname}`).toBe(`${t.op.issuer}/session/end`);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/bye`);
    expect(url.searchParams.get('id_token_hint')).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    await expectNoLogin(t, agent);
    // the OP ends its own session and sends the browser back to the app
    const back = await browser.endSession(url);
    expect(back.href).toBe(`${t.baseURL}/bye`);
  });

  test('POST works too', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').type('form').send({ returnTo: '/bye' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toContain('/session/end');
    await expectNoLogin(t, agent);
  });

  test('without a login it just goes back to returnTo', async () => {
    const res = await t.agent().get('/auth/logout?returnTo=/bye');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/bye');
  });

  test.each(['https://evil.example', '//evil.example', '/\\evil.example'])('an open-redirect returnTo %s falls back to /', async (returnTo) => {
    const agent = t.agent();
    const anonymous = await agent.get(`/auth/logout?returnTo=${encodeURIComponent(returnTo)}`);
    expect(anonymous.headers.location).toBe('/');
    await t.login(agent);
    const res = await agent.get(`/auth/logout?returnTo=${encodeURIComponent(returnTo)}`);
    expect(new URL(res.headers.location).searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/`);
  });
});
