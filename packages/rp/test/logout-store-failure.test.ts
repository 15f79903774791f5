/**
 * A sign-out that meets the store failing on its way to the OP (an OP found on the fly, read from the
 * registration store by an instance that has not cached it): the store's own 503, which under
 * NODE_ENV=production does not quote the store (Redis's reply, its ACL user and key patterns) and
 * speaks of no OP (review-56: it went to the "could not reach the provider" page, message and all).
 */
import session from 'express-session';
import request from 'supertest';
import { RpError, memoryRegistrationStore, type DynamicOptions, type RegistrationStore } from '@openid-express/rp';
import { startDynamicOp, type DynamicOp } from './simulators/dynamic-op.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';

const SECRET_DETAIL = "redisCoordination: Redis failed: NOPERM User rp-prod has no permissions to access the 'openid-express:rp:oidc-dynreg:x' key; it needs ~openid-express:rp:*";
let op: DynamicOp;
const apps: SimApp[] = [];
let failing = false;
const inner = memoryRegistrationStore();
const store: RegistrationStore = {
  get: async (k) => { if (failing) throw new RpError('store_unavailable', SECRET_DETAIL, { lasting: true }); return inner.get(k); },
  set: (k, v) => inner.set(k, v),
  forget: (k, c) => inner.forget?.(k, c),
};
const dynamic = { webfinger: true, registration: true, allowPrivateNetwork: true, allowInsecureRequests: true, store } as DynamicOptions;

beforeAll(async () => { op = await startDynamicOp({ users: ['alice'] }); });
afterAll(async () => { await Promise.all(apps.map((a) => a.close())); await op.close(); });

async function walkOp(start: string, back: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  for (let hops = 0; hops < 10; hops++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) { const [pair] = line.split(';'); const i = pair!.indexOf('='); jar.set(pair!.slice(0, i), pair!.slice(i + 1)); }
    url = new URL(res.headers.get('location')!, url);
    if (url.href.startsWith(back)) return url;
  }
  throw new Error('too many redirects');
}

test('NODE_ENV=production: a logout whose provider lookup meets a refusing store does not quote the store', async () => {
  const shared = new session.MemoryStore();
  const a = await startSimApp(() => ({}), { store: shared, rp: { dynamic } });
  const b = await startSimApp(() => ({}), { store: shared, rp: { dynamic } }); // another instance, its cache empty
  apps.push(a, b);
  const agent = a.agent();
  const start = await agent.get(`/auth/login?identifier=${encodeURIComponent(`alice@${op.host}`)}&returnTo=/me`).set('accept', 'application/json');
  expect(start.status).toBe(302);
  expect((await agent.get(pathOf(await walkOp(start.headers.location, a.baseURL)))).status).toBe(302);
  const cookie = agent.jar.getCookie('connect.sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.toValueString();
  const env = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  failing = true;
  try {
    const html = await request(b.app).post('/auth/logout').set('cookie', cookie).set('origin', b.baseURL).set('sec-fetch-site', 'same-origin').set('accept', 'text/html');
    const json = await request(b.app).post('/auth/logout').set('cookie', cookie).set('origin', b.baseURL).set('sec-fetch-site', 'same-origin').set('accept', 'application/json');
    expect([html.status, json.status]).toEqual([503, 503]);
    for (const shown of [html.text, json.text]) expect(shown).not.toMatch(/NOPERM|rp-prod|~openid-express/);
    expect(json.body.error).toBe('store_unavailable');
    expect(html.text).toContain('If you were signed in, you still are');
    expect((await request(b.app).get('/me').set('cookie', cookie)).status).toBe(200); // the login kept
  } finally {
    failing = false;
    process.env.NODE_ENV = env;
  }
}, 30_000);
