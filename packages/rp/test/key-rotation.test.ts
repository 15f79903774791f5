import * as jose from 'jose';
import { KeySets } from '../src/id-token.js';
import { CLIENT_ID, startRp, tokenRoute, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';
import { logoutToken as signLogoutToken } from './support/logout-token.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ID token keys (JWKS)', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ rp: { jwksCooldown: 0 } });
  });
  afterAll(() => t.close());

  test('are downloaded once, cached, and downloaded again once when the OP rotates its key', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1);
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1); // cached

    const oldKid = t.op.signingKey.kid;
    t.op.rotateKeys();
    expect(t.op.signingKey.kid).not.toBe(oldKid);
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302); // unknown kid → one refetch
    expect(t.op.counts.jwks).toBe(2);
    expect((await agent.get('/me')).status).toBe(200);

    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(2); // the new key is cached
  });
});

describe('with the default gap between downloads (1 s)', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp();
  });
  afterAll(() => t.close());

  test('rp-key-rotation-op-sign-key: a login right after the OP rotated its key succeeds (the unknown kid is fetched at once)', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1);
    t.op.rotateKeys();
    const agent = t.agent();
    const started = Date.now();
    const res = await t.login(agent);
    expect(res.status).toBe(302);
    expect(t.op.counts.jwks).toBe(2);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('an OP that gives its new key the old key\'s kid: the next login downloads the keys again and succeeds, and so does a back-channel logout signed with it (certification probe F1)', async () => {
    const first = t.agent();
    expect((await t.login(first)).status).toBe(302);
    const kid = t.op.signingKey.kid;
    const downloads = t.op.counts.jwks;
    await sleep(1100); // past the gap since the last download
    t.op.rotateKeys({ sameKid: true });
    expect(t.op.signingKey.kid).toBe(kid);
    const agent = t.agent();
    const res = await t.login(agent);
    expect(res.status).toBe(302); // before: 401 invalid_id_token "signature verification failed" for 10 minutes
    expect(t.op.counts.jwks).toBe(downloads + 1);
    expect((await agent.get('/me')).status).toBe(200);
    // once more, and the first token signed with the new key is a logout token (before: 400, and the OP does not send it again)
    await sleep(1100);
    t.op.rotateKeys({ sameKid: true });
    const sub = (await first.get('/me')).body.sub as string;
    const logout = await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: await signLogoutToken(t.op, { sub }) });
    expect(logout.status).toBe(200);
    expect(t.op.counts.jwks).toBe(downloads + 2);
    expect((await first.get('/me')).status).toBe(401);
  });

  test('a token whose signature no key verifies, even downloaded again, is refused: one download for it, and none more within the gap', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    await sleep(1100);
    const downloads = t.op.counts.jwks;
    const { privateKey } = await jose.generateKeyPair('RS256');
    const forged = await new jose.SignJWT({ sub: 'alice', nonce: 'n' }).setProtectedHeader({ alg: 'RS256', kid: t.op.signingKey.kid as string })
      .setIssuer(t.op.issuer).setAudience(CLIENT_ID).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const keySets = (t.relyingParty as unknown as { keySets: KeySets }).keySets;
    const verify = () => import('../src/id-token.js').then(({ verifyJwt }) => verifyJwt(forged, { jwksUri: `${t.op.issuer}/jwks`, issuer: t.op.issuer, audience: CLIENT_ID, algorithms: ['RS256'] }, keySets, t.relyingParty.provider('op')));
    await expect(verify()).rejects.toThrow(/signature verification failed/);
    expect(t.op.counts.jwks).toBe(downloads + 1);
    await expect(verify()).rejects.toThrow(/signature verification failed/);
    expect(t.op.counts.jwks).toBe(downloads + 2); // the gap is the OP's protection: spaced, as for unknown kids
  });

  test('tokens naming unknown kids do not hammer the OP: one download in flight, at most one a second', async () => {
    const { relyingParty } = t;
    const jwksUri = `${t.op.issuer}/jwks`;
    const set = (relyingParty as unknown as { keySets: { get(u: string, p: object): (h: object) => Promise<unknown> } }).keySets.get(jwksUri, {});
    const before = t.op.counts.jwks;
    const started = Date.now();
    const misses = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => set({ alg: 'RS256', kid: `forged-${i}` })));
    expect(misses.every((m) => m.status === 'rejected')).toBe(true);
    // 20 unknown kids at once: jose shares the one download in flight (maybe one more, spaced by the gap)
    expect(t.op.counts.jwks - before).toBeLessThanOrEqual(2);
    const again = await Promise.allSettled([set({ alg: 'RS256', kid: 'forged-late' })]);
    expect(again[0].status).toBe('rejected');
    // the next download waited for the 1 s gap
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});

/**
 * An OP of several instances whose signing key changes on one instance first (a rolling deploy that
 * puts the new key first on instance A while B still publishes only the old one): A signs with a key
 * that the JWKS, downloaded from B, does not hold. Here the RP, holding no keys yet (a new instance,
 * or its cache went stale), is served a key set without the OP's signing key, as B would serve it.
 */
describe('an OP that signs with a key its JWKS does not publish yet', () => {
  let t: TestRp;
  let otherJwks: string;
  let servedJwks: string | undefined;
  beforeAll(async () => {
    const { publicKey } = await jose.generateKeyPair('RS256');
    otherJwks = JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'the-old-key', alg: 'RS256', use: 'sig' }] });
    t = await startRp({
      op: { ttl: { AccessToken: 2 } },
      rp: { jwksCooldown: 0 },
      routes: tokenRoute,
      provider: {
        customFetch: async (url, init) => (servedJwks !== undefined && url.endsWith('/jwks')
          ? new Response(servedJwks, { status: 200, headers: { 'content-type': 'application/json' } })
          : fetch(url, init as RequestInit)),
      },
    });
  });
  afterAll(() => t.close());
  beforeEach(() => clearStore(t));
  afterEach(() => {
    servedJwks = undefined;
    jest.restoreAllMocks();
  });

  /** From now on the RP, holding no keys, downloads a key set without the OP's signing key. */
  function signingWithUnpublishedKey(): void {
    (t.relyingParty as unknown as { keySets: KeySets }).keySets = new KeySets(0);
    servedJwks = otherJwks;
  }

  test('a refresh keeps the login (new access and refresh tokens, the earlier ID token), and says once what to fix', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    const before = (await t.authenticatedSessions()).length;
    signingWithUnpublishedKey();
    await sleep(2100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    // before: 401 refresh_failed ("no applicable key found in the JSON Web Key Set"), and the user was logged out
    const first = await agent.get('/token');
    expect(first.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    expect((await agent.get('/me')).body.sub).toBe('alice');
    expect((await t.authenticatedSessions()).length).toBe(before);
    await sleep(2100);
    expect((await agent.get('/token')).status).toBe(200); // and again, with the kept refresh token
    const warnings = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('refreshed ID token was not used'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${t.op.issuer}/jwks`);
    expect(warnings[0]).toContain('publish the new key on every OP instance before any of them signs with it');
  }, 60_000);

  test('a back-channel logout token signed with that key: 503 with Retry-After (the OP sends it again), not a 400 that loses the logout', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    signingWithUnpublishedKey();
    const token = await signLogoutToken(t.op, { sub: 'alice' });
    const refused = await t.agent().post('/auth/backchannel-logout/op').set('accept', 'application/json').type('form').send({ logout_token: token });
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect(refused.body.error_description).toContain('publish the new key on every OP instance');
    servedJwks = undefined; // every instance publishes it now: the OP's retry ends the session
    expect((await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token })).status).toBe(200);
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('a token with a kid the OP never published whose claims are not this OP\'s logout token for this app (a forgery): 400 invalid_logout_token, not a 503 the OP would retry (soak probe)', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    const post = async (token: string) => t.agent().post('/auth/backchannel-logout/op').set('accept', 'application/json').type('form').send({ logout_token: token });
    for (const claims of [{ iss: 'https://elsewhere.example' }, { aud: 'another-app' }, { events: { 'https://example.com/other-event': {} } }]) {
      const refused = await post(await signLogoutToken(t.op, { sub: 'alice', ...claims }, { kid: 'made-up' }));
      // before: 503 op_unavailable with Retry-After: 5 for every one
      expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([400, 'invalid_logout_token', undefined]);
    }
    // one that is this OP's logout token but for a key it does not publish may be genuine: the OP's retry is wanted
    const maybe = await post(await signLogoutToken(t.op, { sub: 'alice' }, { kid: 'made-up' }));
    expect([maybe.status, maybe.body.error]).toEqual([503, 'op_unavailable']);
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('a sign-in whose ID token is signed with it is refused, and the message says what to fix (also to the operator, once an hour)', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    signingWithUnpublishedKey();
    const agent = t.agent();
    const res = await t.login(agent);
    expect(res.status).toBe(401);
    expect(JSON.stringify(res.body)).toContain('publish the new key on every OP instance before any of them signs with it');
    await expectNoLogin(t, agent);
    expect((await t.login(t.agent())).status).toBe(401);
    const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('401 invalid_id_token'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('publish the new key on every OP instance');
  });
});

describe('what an RP keeps per OP found on the fly (strangers name them) stays bounded', () => {
  test('the key sets of 1 200 jwks_uri: the newest 1 000 kept; an evicted one is simply made again', () => {
    const keySets = new KeySets(0);
    const provider = { type: 'oidc' } as never;
    const first = keySets.get('https://op-0.example/jwks', provider);
    for (let i = 1; i < 1200; i++) keySets.get(`https://op-${i}.example/jwks`, provider);
    const held = keySets as unknown as { sets: Map<string, unknown>; remotes: Map<string, unknown> };
    expect([held.sets.size, held.remotes.size]).toEqual([1000, 1000]); // before: 1 200, and growing with every new issuer
    expect(keySets.get('https://op-1199.example/jwks', provider)).toBe(keySets.get('https://op-1199.example/jwks', provider));
    expect(keySets.get('https://op-0.example/jwks', provider)).not.toBe(first);
  });

  test('the discovered metadata of 1 200 providers: the newest 1 000 kept', async () => {
    const { RelyingParty } = await import('../src/relying-party.js');
    const { oidc } = await import('../src/providers/oidc.js');
    const providers = Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`p${i}`, oidc({
      clientId: 'app', clientSecret: 'secret-secret-secret',
      providerInfo: { issuer: `https://op-${i}.example`, authorization_endpoint: `https://op-${i}.example/auth`, token_endpoint: `https://op-${i}.example/token`, jwks_uri: `https://op-${i}.example/jwks` },
    })]));
    const relyingParty = new RelyingParty({ baseURL: 'https://app.example.com', providers });
    for (let i = 0; i < 1200; i++) await relyingParty.providerInfo(`p${i}`);
    expect((relyingParty as unknown as { configs: Map<string, unknown> }).configs.size).toBe(1000);
    expect((await relyingParty.providerInfo('p0')).serverMetadata().issuer).toBe('https://op-0.example'); // made again
  });
});
