/**
 * Logging in with Microsoft Entra ID through rp(), end to end against the Entra simulator:
 * multi-tenant discovery with the "{tenantid}" issuer, `tid`-bound `iss`, allowed tenants,
 * single tenants by id and by domain, and the seed's id_token + form_post mode.
 */
import { microsoft, type MicrosoftOptions } from '@openid-express/rp';
import { CONSUMERS_TENANT, startMicrosoftSimulator, type MicrosoftSimulator, type MicrosoftUser } from './simulators/microsoft.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';

const CONTOSO = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const FABRIKAM = 'aaaabbbb-0000-cccc-1111-dddd2222eeee';
const clientId = '6731de76-14a6-49ae-97bc-6eba6914391e';
const clientSecret = 'entra-client-secret';
const ann: MicrosoftUser = { sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', oid: '00000000-0000-0000-66f3-3332eca7ea81', tid: CONTOSO, name: 'Ann Contoso', preferred_username: 'ann@contoso.com', email: 'ann@contoso.com' };

let sim: MicrosoftSimulator;
let app: SimApp;
const PROVIDERS = ['common', 'orgs', 'fabrikamonly', 'contoso', 'bydomain', 'consumers', 'seed', 'offline'];

beforeAll(async () => {
  sim = await startMicrosoftSimulator({ clientId, clientSecret, redirectUris: [], user: ann, domains: { 'contoso.onmicrosoft.com': CONTOSO } });
  const entry = (o: Partial<MicrosoftOptions> & { tenant: string }) =>
    microsoft({ clientId, clientSecret, authority: sim.authority, allowInsecureRequests: true, ...o });
  app = await startSimApp(() => ({
    common: entry({ tenant: 'common' }),
    orgs: entry({ tenant: 'organizations', allowedTenants: [CONTOSO] }),
    fabrikamonly: entry({ tenant: 'organizations', allowedTenants: [FABRIKAM] }),
    contoso: entry({ tenant: CONTOSO }),
    bydomain: entry({ tenant: 'contoso.onmicrosoft.com' }),
    consumers: entry({ tenant: 'consumers' }),
    seed: microsoft({ tenant: 'common', clientId, authority: sim.authority, allowInsecureRequests: true, responseType: 'id_token' }),
    offline: entry({ tenant: 'organizations', offline: true }),
  }));
  sim.options.redirectUris = PROVIDERS.map((n) => `${app.baseURL}/auth/callback/${n}`);
});
afterAll(async () => {
  await app.close();
  await sim.close();
});
beforeEach(async () => {
  sim.options.user = { ...ann };
  sim.options.issOverride = undefined;
  await new Promise<void>((resolve) => app.store.clear(() => resolve()));
});

async function login(provider: string) {
  const agent = app.agent();
  const callback = await app.authorize(await app.startLogin(agent, provider));
  const res = await agent.get(pathOf(callback)).set('accept', 'application/json');
  return { agent, callback, res };
}

async function expectRefused(res: { status: number; body: { error?: string } }, agent: ReturnType<SimApp['agent']>, code = 'invalid_id_token') {
  expect(res.status).toBe(code === 'invalid_id_token' ? 401 : 400);
  expect(res.body.error).toBe(code);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
}

test('the discovery document of /common names the issuer template, as Entra\'s does', async () => {
  const doc = await (await fetch(`${sim.authority}/common/v2.0/.well-known/openid-configuration`)).json();
  expect(doc.issuer).toBe(`${sim.authority}/{tenantid}/v2.0`);
});

test('multi-tenant (common): a work account logs in; its iss is the template filled with its tid', async () => {
  const { agent, res } = await login('common');
  expect(res.status).toBe(302);
  expect(sim.authorizationRequests.at(-1)).toMatchObject({ response_type: 'code', code_challenge_method: 'S256', scope: 'openid profile email' });
  const me = await agent.get('/me');
  expect(me.body).toMatchObject({ sub: ann.sub, provider: 'common', name: 'Ann Contoso', email: 'ann@contoso.com' });
  expect(me.body.claims).toMatchObject({ tid: CONTOSO });
  expect((await agent.get('/id-token-claims')).body).toMatchObject({ tid: CONTOSO, iss: `${sim.authority}/${CONTOSO}/v2.0` });
});

test('organizations + allowedTenants: a listed tenant logs in', async () => {
  const { res } = await login('orgs');
  expect(res.status).toBe(302);
});

test('organizations + allowedTenants: another tenant is refused and leaves no session', async () => {
  const { agent, res } = await login('fabrikamonly');
  await expectRefused(res, agent);
  expect(res.body.error_description).toMatch(/not in allowedTenants/);
});

test('an ID token whose iss does not match its tid is refused (a token of one tenant posing as another)', async () => {
  sim.options.issOverride = `${sim.authority}/${FABRIKAM}/v2.0`;
  const { agent, res } = await login('common');
  await expectRefused(res, agent);
});

test('an ID token whose iss is the unfilled template is refused', async () => {
  sim.options.issOverride = `${sim.authority}/{tenantid}/v2.0`;
  const { agent, res } = await login('common');
  await expectRefused(res, agent);
});

test('single tenant by id: its own users log in', async () => {
  const { res } = await login('contoso');
  expect(res.status).toBe(302);
});

test('single tenant by id: a token carrying another tenant\'s iss is refused', async () => {
  sim.options.issOverride = `${sim.authority}/${FABRIKAM}/v2.0`;
  const { agent, res } = await login('contoso');
  await expectRefused(res, agent);
});

test('single tenant by domain: discovery names the tenant id as issuer, and login works', async () => {
  const doc = await (await fetch(`${sim.authority}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration`)).json();
  expect(doc.issuer).toBe(`${sim.authority}/${CONTOSO}/v2.0`);
  const { res } = await login('bydomain');
  expect(res.status).toBe(302);
});

test('consumers: Entra refuses a work account (access_denied), which ends the login cleanly', async () => {
  const { agent, res } = await login('consumers');
  expect(res.status).toBe(400);
  expect(res.body).toMatchObject({ error: 'op_error', op_error: 'access_denied' });
  expect((await agent.get('/me')).status).toBe(401);
});

test('consumers: a personal account logs in (iss is the consumers tenant)', async () => {
  sim.options.user = { ...ann, tid: CONSUMERS_TENANT, email: 'ann@outlook.com' };
  const { agent, res } = await login('consumers');
  expect(res.status).toBe(302);
  expect((await agent.get('/id-token-claims')).body.iss).toBe(`${sim.authority}/${CONSUMERS_TENANT}/v2.0`);
});

test('multi-tenant with offline: the refreshed ID token (iss of the user\'s tenant) is accepted, and a spent refresh token ends cleanly', async () => {
  const { agent, res } = await login('offline');
  expect(res.status).toBe(302);
  expect(sim.authorizationRequests.at(-1)!.scope).toBe('openid profile email offline_access');
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(200);
  expect(sim.tokenRequests.at(-1)).toBe('refresh_token');
  expect((await agent.get('/id-token-claims')).body.iss).toBe(`${sim.authority}/${CONTOSO}/v2.0`);
});

test('multi-tenant refresh: a refreshed ID token whose iss does not match its tid is refused', async () => {
  const { agent } = await login('offline');
  sim.options.issOverride = `${sim.authority}/${FABRIKAM}/v2.0`;
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(401);
  expect(refreshed.body.error).toBe('refresh_failed');
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('the provider list labels the Microsoft entries', async () => {
  const list = (await app.agent().get('/auth/providers')).body as Array<{ name: string; label: string; type: string }>;
  expect(list.map((p) => p.name)).toEqual(PROVIDERS);
  expect(list.every((p) => p.label === 'Microsoft' && p.type === 'oidc')).toBe(true);
});

test('logout ends the local session, then RP-initiated logout at Entra\'s end_session_endpoint of the tenant', async () => {
  const { agent } = await login('common');
  const out = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
  expect(out.status).toBe(302);
  const endSession = new URL(out.headers.location);
  expect(endSession.origin + endSession.pathname).toBe(`${sim.authority}/common/oauth2/v2.0/logout`);
  expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${app.baseURL}/bye`);
  expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();
  // Entra sends the browser back to the registered post-logout URI with the state, which rp() takes off there
  const back = await fetch(endSession, { redirect: 'manual' });
  expect(back.status).toBe(302);
  const landing = new URL(back.headers.get('location')!);
  expect([landing.origin + landing.pathname, landing.searchParams.get('state')]).toEqual([`${app.baseURL}/bye`, endSession.searchParams.get('state')]);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('Entra\'s single sign-out: its GET of the front-channel logout URL with sid alone (no iss) ends the session of that sid', async () => {
  const { agent } = await login('common');
  const { agent: other } = await login('contoso'); // another provider entry: its logins are not this one's
  const signedOut = await app.agent().get(`/auth/frontchannel-logout/common?sid=${encodeURIComponent(sim.sid)}`);
  expect(signedOut.status).toBe(200);
  expect((await agent.get('/me')).status).toBe(401);
  expect((await other.get('/me')).status).toBe(200);
  // a sid that is no login of this provider ends nothing
  const { agent: again } = await login('common');
  expect((await app.agent().get('/auth/frontchannel-logout/common?sid=not-a-session')).status).toBe(200);
  expect((await again.get('/me')).status).toBe(200);
});

test('sign-out sends logout_hint when the ID token carries Entra\'s login_hint optional claim (no account picker at Entra)', async () => {
  sim.options.loginHintClaim = true;
  try {
    const { agent } = await login('common');
    const out = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(new URL(out.headers.location).searchParams.get('logout_hint')).toMatch(/^O\./);
  } finally {
    sim.options.loginHintClaim = false;
  }
  const { agent } = await login('common');
  const out = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
  expect(new URL(out.headers.location).searchParams.has('logout_hint')).toBe(false);
});

/** The fields of the auto-submitting form an OP answers with under response_mode=form_post. */
function formFields(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)![1].replace(/&amp;/g, '&');
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) fields[m[1]] = m[2].replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return { action, fields };
}

test('seed mode (id_token + form_post, no token endpoint): all claims come from the ID token', async () => {
  const agent = app.agent();
  const tokenRequestsBefore = sim.tokenRequests.length;
  const start = await app.startLogin(agent, 'seed');
  expect(Object.fromEntries(start.searchParams)).toMatchObject({ response_type: 'id_token', response_mode: 'form_post' });
  expect(start.searchParams.has('code_challenge')).toBe(false);
  const page = await fetch(start);
  const { action, fields } = formFields(await page.text());
  expect(action).toBe(`${app.baseURL}/auth/callback/seed`);
  expect(Object.keys(fields).sort()).toEqual(['id_token', 'session_state', 'state']);
  const res = await agent.post('/auth/callback/seed').type('form').send(fields);
  expect(res.status).toBe(303);
  const me = await agent.get('/me');
  expect(me.body).toMatchObject({ sub: ann.sub, provider: 'seed', name: 'Ann Contoso' });
  expect(sim.tokenRequests.length).toBe(tokenRequestsBefore);
});

test('seed mode: a posted ID token from a tenant posing as another is refused', async () => {
  sim.options.issOverride = `${sim.authority}/${FABRIKAM}/v2.0`;
  const agent = app.agent();
  const { fields } = formFields(await (await fetch(await app.startLogin(agent, 'seed'))).text());
  const res = await agent.post('/auth/callback/seed').type('form').set('accept', 'application/json').send(fields);
  await expectRefused(res, agent);
});

test('seed mode: an ID token posted twice does not log in twice (single-use state)', async () => {
  const agent = app.agent();
  const { fields } = formFields(await (await fetch(await app.startLogin(agent, 'seed'))).text());
  expect((await agent.post('/auth/callback/seed').type('form').send(fields)).status).toBe(303);
  const thief = app.agent();
  const replay = await thief.post('/auth/callback/seed').type('form').set('accept', 'application/json').send({ ...fields, oidc_resubmitted: '1' });
  expect(replay.status).toBe(400);
  expect((await thief.get('/me')).status).toBe(401);
});
