import { memoryAdapter, type OpClient, type OpStore } from '@openid-express/op';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { BrowserPage, FormBrowser } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { client, DEVICE_CODE, oauthError, startGrantOp, webClient, type GrantFixture } from './support/grant-fixture.js';

const TV: OpClient = { client_id: 'tv', client_name: 'Living-room <TV>', token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE, 'refresh_token'], response_types: [] };
const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&amp;': '&' };
/** The visible text of a page, entities decoded. */
const text = (page: BrowserPage) => page.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')
  .replace(/&(lt|gt|quot|#39|amp);/g, (e) => ENTITIES[e]!);

/** Polls as a device does, every 100 ms (the OP asks for none; openid-client's default is 5 s). */
function poll(tv: client.Configuration, da: client.DeviceAuthorizationResponse) {
  return client.pollDeviceAuthorizationGrant(tv, { ...da, interval: 0.1 }, undefined, { signal: AbortSignal.timeout(20_000) });
}

/** The person at the OP's /device page: types the code, then answers the "is this your device?" page. */
async function enterCode(browser: FormBrowser, da: client.DeviceAuthorizationResponse, code = da.user_code) {
  const input = await browser.open(da.verification_uri);
  return browser.submit(input, { has: 'user_code' }, { user_code: code });
}

// RFC 8628 device authorization grant with the OP's own pages, driven by openid-client and a scripted user
describe('features.deviceFlow', () => {
  let f: GrantFixture;
  let tv: client.Configuration;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({ name: 'Example ID', features: { deviceFlow: true }, clients: [webClient(origin), TV] }));
    tv = await f.config('tv', 'none');
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('end to end: the device polls while the user types the code, confirms, signs in and consents; the device gets alice\'s tokens', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid email offline_access' });
    expect(da).toMatchObject({
      device_code: expect.any(String), user_code: expect.stringMatching(/^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$/),
      verification_uri: `${f.op.issuer}/device`, expires_in: 600,
    });
    const device = poll(tv, da);
    const browser = f.browser();

    const input = await browser.open(da.verification_uri);
    expect(input.status).toBe(200);
    expect(input.html).toContain('<title>Sign in a device · Example ID</title>'); // the OP's layout, its name
    expect(input.html).toContain('<header class="site">');
    expect(input.html).toContain('<label for="user-code">Code</label>');
    expect(input.headers.get('x-frame-options')).toBe('DENY');
    expect(input.headers.get('cache-control')).toBe('no-store');

    const confirm = await browser.submit(input, { has: 'user_code' }, { user_code: da.user_code.toLowerCase().replace('-', ' ') }); // as typed
    expect(text(confirm)).toContain('Living-room <TV> on a device asks to sign in');
    expect(confirm.html).not.toContain('<TV>'); // escaped
    expect(text(confirm)).toContain(da.user_code);

    const login = await browser.submit(confirm, { has: 'user_code' }, { confirm: 'yes' });
    expect(login.url).toContain('/interaction/');
    expect(text(login)).toContain('to continue to Living-room <TV>');
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(text(consent)).toContain('Living-room <TV> asks to');
    const done = await browser.submit(consent, { action: '/confirm' });
    expect(done.status).toBe(200);
    expect(done.html).toContain('<title>Device signed in · Example ID</title>');
    expect(text(done)).toContain('Living-room <TV> on your device is signed in');

    const tokens = await device;
    expect(tokens.claims()!.sub).toBe('alice');
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(await client.fetchUserInfo(tv, tokens.access_token, 'alice')).toMatchObject({ sub: 'alice', email: ALICE.claims.email });
  });

  test('the link with the code in it (verification_uri_complete) answers oidc-provider\'s self-posting page with the OP\'s headers: no-store, no framing (it holds the CSRF token)', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const page = await f.browser().open(da.verification_uri_complete!);
    expect(page.html).toContain('<title>Submitting Callback</title>');
    expect(page.html).toContain('name="xsrf"');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'$/);
    expect(page.html).toContain('<html lang="en">');
  });

  test('a wrong code is said so, the form comes back with it; nothing happens at the device', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const page = await enterCode(f.browser(), da, 'BCDF-GHJK');
    expect(page.status).toBe(200);
    expect(text(page)).toContain('That code is not right');
    expect(page.forms[0]!.fields.user_code).toBe('BCDF-GHJK');
    expect(await oauthError(client.genericGrantRequest(tv, DEVICE_CODE, { device_code: da.device_code }))).toMatchObject({ error: 'authorization_pending' });
  });

  test('denied at the consent screen: the page says the sign-in was cancelled, the device gets access_denied', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid email' });
    const device = poll(tv, da);
    const browser = f.browser();
    const login = await browser.submit(await enterCode(browser, da), { has: 'user_code' }, { confirm: 'yes' });
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    const denied = await browser.submit(consent, { action: '/abort' });
    expect(text(denied)).toContain('The sign-in was cancelled');
    expect(await oauthError(device)).toMatchObject({ error: 'access_denied' });
  });

  test('cancelled on the "is this your device?" page: access_denied, and the code cannot be used again', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const device = poll(tv, da);
    const browser = f.browser();
    const cancelled = await browser.submit(await enterCode(browser, da), { has: 'user_code' }, { abort: 'yes' });
    expect(text(cancelled)).toContain('The sign-in was cancelled');
    expect(await oauthError(device)).toMatchObject({ error: 'access_denied' });
    expect(text(await enterCode(f.browser(), da))).toContain('That code was already used');
  });

  test('a form posted without its CSRF token (from another site) changes nothing', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const pending = async () => (await oauthError(client.genericGrantRequest(tv, DEVICE_CODE, { device_code: da.device_code }))).error;
    // a browser with an OP session: the code page again, with a reason
    const browser = f.browser();
    await browser.open(da.verification_uri);
    const forged = await browser.post(`${f.op.issuer}/device`, { user_code: da.user_code, confirm: 'yes' });
    expect(forged.status).toBe(400);
    expect(text(forged)).toContain('This page has expired. Enter the code your device shows again.');
    // a browser without one: sent to the code page to start over
    const bare = await f.browser().post(`${f.op.issuer}/device`, { user_code: da.user_code, confirm: 'yes' });
    expect([bare.status, bare.url]).toEqual([200, da.verification_uri]);
    expect(bare.forms[0]!.fields).toEqual({ xsrf: expect.any(String), user_code: '' });
    expect(await pending()).toBe('authorization_pending');
  });
});

describe('device flow codes that expire (ttl.DeviceCode: 1)', () => {
  let f: GrantFixture;
  let tv: client.Configuration;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({ ttl: { DeviceCode: 1 }, features: { deviceFlow: true }, clients: [webClient(origin), TV] }));
    tv = await f.config('tv', 'none');
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('the device gets expired_token and the user is told the code expired', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    expect(da.expires_in).toBe(1);
    expect(await oauthError(poll(tv, da))).toMatchObject({ error: 'expired_token' });
    expect(text(await enterCode(f.browser(), da))).toContain('That code has expired');
  });
});

/** Device codes kept as many stores keep records: dropped `expiresIn` seconds after they were written. */
class StrictDeviceCodes implements Adapter {
  #codes = new Map<string, { payload: AdapterPayload; expiresAt: number }>(); // a private field: op() must call methods on this object itself

  #live(id: string) {
    const record = this.#codes.get(id);
    if (record && record.expiresAt <= Date.now()) this.#codes.delete(id);
    return this.#codes.get(id);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
    this.#codes.set(id, { payload: { ...payload }, expiresAt: expiresIn === undefined ? Infinity : Date.now() + expiresIn * 1000 });
  }

  async find(id: string) {
    const r = this.#live(id);
    return r && { ...r.payload };
  }

  async findByUserCode(userCode: string) {
    for (const [id, r] of this.#codes) if (r.payload.userCode === userCode && this.#live(id)) return { ...r.payload };
    return undefined;
  }

  async findByUid() {
    return undefined;
  }

  async consume(id: string) {
    const r = this.#live(id);
    if (r) r.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string) {
    this.#codes.delete(id);
  }

  async revokeByGrantId(grantId: string) {
    for (const [id, r] of this.#codes) if (r.payload.grantId === grantId) this.#codes.delete(id);
  }
}

/** An app's own store: device codes in {@link StrictDeviceCodes}, every other model in memoryAdapter(). */
function strictDeviceCodeStore(): OpStore {
  const base = memoryAdapter();
  const deviceCodes = new StrictDeviceCodes();
  return {
    kind: 'app', adapterFor: (model) => (model === 'DeviceCode' ? deviceCodes : base.adapterFor(model)),
    increment: (key, ttl) => base.increment(key, ttl), count: (key) => base.count(key), reset: (key) => base.reset(key),
  };
}

describe('device flow codes that expire, in an app\'s own store that drops records at their expiry', () => {
  let f: GrantFixture;
  let tv: client.Configuration;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({ adapter: strictDeviceCodeStore(), ttl: { DeviceCode: 1 }, features: { deviceFlow: true }, clients: [webClient(origin), TV] }));
    tv = await f.config('tv', 'none');
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('op() tells the store to keep them a while, so the device still gets expired_token (RFC 8628 §3.5), not invalid_grant', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    await new Promise((resolve) => setTimeout(resolve, 2100)); // the device polls after the store's own expiry of the code
    expect(await oauthError(poll(tv, da))).toMatchObject({ error: 'expired_token' });
    expect(text(await enterCode(f.browser(), da))).toContain('That code has expired');
  });
});

describe('device flow when features.deviceFlow is off', () => {
  let f: GrantFixture;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({ clients: [webClient(origin)] }));
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('there is no device endpoint and the grant is unsupported', async () => {
    const web = await f.config('web');
    expect(web.serverMetadata().device_authorization_endpoint).toBeUndefined();
    expect((await fetch(`${f.op.issuer}/device/auth`, { method: 'POST' })).status).toBe(404);
    expect(await oauthError(client.genericGrantRequest(web, DEVICE_CODE, { device_code: 'x' }))).toMatchObject({ error: 'unsupported_grant_type' });
  });
});
