/**
 * `response_mode=form_post` callbacks that arrive without the session cookie (what a browser does
 * with a SameSite=Lax cookie on a cross-site POST): the RP answers a same-origin page that posts the
 * fields again, and that second POST, with the cookie, completes the login.
 * (form-post-browser.test.ts proves the same in real Chromium across sites.)
 */
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { microsoft, requireAuth, rp } from '@openid-express/rp';
import { startMicrosoftSimulator, type MicrosoftSimulator } from './simulators/microsoft.js';
import { startSimApp, type SimApp } from './simulators/app.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const clientId = '6731de76-14a6-49ae-97bc-6eba6914391e';
let sim: MicrosoftSimulator;
let app: SimApp;

beforeAll(async () => {
  sim = await startMicrosoftSimulator({
    clientId, clientSecret: 'entra-secret', redirectUris: [],
    user: { sub: 'pairwise-sub-ann', oid: 'oid-ann', tid: TENANT, name: 'Ann', preferred_username: 'ann@contoso.com' },
  });
  app = await startSimApp(() => ({
    seed: microsoft({ tenant: 'common', clientId, authority: sim.authority, allowInsecureRequests: true, responseType: 'id_token' }),
    code: microsoft({ tenant: 'common', clientId, clientSecret: 'entra-secret', authority: sim.authority, allowInsecureRequests: true, responseMode: 'form_post' }),
  }));
  sim.options.redirectUris = [`${app.baseURL}/auth/callback/seed`, `${app.baseURL}/auth/callback/code`];
});
afterAll(async () => {
  await app.close();
  await sim.close();
});
beforeEach(() => new Promise<void>((resolve) => app.store.clear(() => resolve())));

/** Action and fields of the first form of an HTML page. */
function form(html: string): { action: string; fields: Record<string, string> } {
  const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const action = unescape(/<form[^>]*action="([^"]+)"/.exec(html)![1]);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) fields[unescape(m[1])] = unescape(m[2]);
  return { action, fields };
}

/** Starts a login with `agent`, lets the simulator answer, returns its form_post fields. */
async function opFormPost(agent: request.Agent, provider: string) {
  const page = await fetch(await app.startLogin(agent, provider));
  return form(await page.text());
}

describe.each(['seed', 'code'])('form_post callback (%s flow) without the session cookie', (provider) => {
  test('is answered by a same-origin page that posts the same fields again, without touching the session', async () => {
    const agent = app.agent();
    const { fields } = await opFormPost(agent, provider);
    const sessionsBefore = Object.keys(await allSessions()).length;
    const crossSite = await request(app.app).post(`/auth/callback/${provider}`).type('form').send(fields);
    expect(crossSite.status).toBe(200);
    expect(crossSite.headers['set-cookie']).toBeUndefined();
    expect(crossSite.headers['cache-control']).toBe('no-store');
    const csp = crossSite.headers['content-security-policy'];
    expect(csp).toMatch(/form-action 'self'/);
    const nonce = /'nonce-([^']+)'/.exec(csp)![1];
    expect(crossSite.text).toContain(`<script nonce="${nonce}">document.forms[0].submit()</script>`);
    const again = form(crossSite.text);
    expect(again.action).toBe(`/auth/callback/${provider}`);
    expect(again.fields).toEqual({ ...fields, oidc_resubmitted: '1' });
    expect(Object.keys(await allSessions()).length).toBe(sessionsBefore);

    // The browser posts it from the app's own origin, so the session cookie comes along now.
    const res = await agent.post(again.action).type('form').send(again.fields);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/me');
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'pairwise-sub-ann', provider });
  });

  test('a resubmitted POST that still matches no login is refused, not bounced again', async () => {
    const { fields } = await opFormPost(app.agent(), provider);
    const stranger = app.agent();
    const res = await stranger.post(`/auth/callback/${provider}`).type('form').set('accept', 'application/json').send({ ...fields, oidc_resubmitted: '1' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_state');
    expect((await stranger.get('/me')).status).toBe(401);
    expect(await app.authenticatedSessions()).toEqual([]);
  });
});

test('the same-origin page escapes what the OP posted (no markup injection)', async () => {
  const res = await request(app.app).post('/auth/callback/seed').type('form').send({ state: 'x"><script>alert(1)</script>', error: '<b>' });
  expect(res.status).toBe(200);
  expect(res.text).not.toContain('<script>alert(1)</script>');
  expect(res.text).not.toContain('<b>');
  expect(form(res.text).fields).toMatchObject({ state: 'x"><script>alert(1)</script>', error: '<b>' });
});

test('with saveUninitialized: true, the cookie-less POST still sets no cookie (it would replace the browser\'s session)', async () => {
  const store = new session.MemoryStore();
  const other = express();
  other.use(session({ secret: 's', store, resave: true, saveUninitialized: true }));
  other.use(rp({ baseURL: app.baseURL, providers: { seed: microsoft({ tenant: 'common', clientId, authority: sim.authority, allowInsecureRequests: true, responseType: 'id_token' }) } }));
  const res = await request(other).post('/auth/callback/seed').type('form').send({ state: 's', id_token: 'x' });
  expect(res.status).toBe(200);
  expect(res.headers['set-cookie']).toBeUndefined();
  const all = await new Promise<Record<string, unknown>>((resolve) => store.all((_e, s) => resolve((s ?? {}) as Record<string, unknown>)));
  expect(Object.keys(all)).toEqual([]);
});

test('GET callbacks are never bounced', async () => {
  const res = await app.agent().get('/auth/callback/code?state=nope&code=x').set('accept', 'application/json');
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('invalid_state');
});

function allSessions(): Promise<Record<string, unknown>> {
  return new Promise((resolve) => app.store.all((_e, s) => resolve((s ?? {}) as Record<string, unknown>)));
}
