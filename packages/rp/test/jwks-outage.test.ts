/**
 * The OP's `jwks_uri` failing in passing (a 5xx from its load balancer while it restarts, 429):
 * transient like any other OP outage, so a refresh keeps the login and a callback answers 503 with
 * Retry-After; and keys already held keep verifying the tokens they signed while it is down.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import { KeySets, verifyJwt } from '../src/id-token.js';
import { RpError } from '../src/errors.js';
import { startRp, tokenRoute, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';
import { logoutToken as signLogoutToken } from './support/logout-token.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KeySets while the jwks_uri answers 503', () => {
  let server: Server;
  let jwksUri: string;
  let mode: 'ok' | '503' | '429' = 'ok';
  let retryAfter: string | undefined;
  let downloads = 0;
  let served: jose.JSONWebKeySet;
  const keys: Array<{ kid: string; privateKey: CryptoKey }> = [];
  const jwks: jose.JWK[] = [];
  const sign = (kid: string) => new jose.SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer('https://op.example').setAudience('app').setIssuedAt().setExpirationTime('5m')
    .sign(keys.find((k) => k.kid === kid)!.privateKey);
  const expectations = () => ({ jwksUri, issuer: 'https://op.example', audience: 'app', algorithms: ['RS256'] });

  beforeAll(async () => {
    for (const kid of ['k1', 'k2']) {
      const { publicKey, privateKey } = await jose.generateKeyPair('RS256');
      keys.push({ kid, privateKey });
      jwks.push({ ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' });
    }
    served = { keys: [jwks[0]!] };
    server = createServer((_req, res) => {
      downloads += 1;
      if (mode !== 'ok') {
        return void res.writeHead(Number(mode), { 'content-type': 'text/html', ...(retryAfter ? { 'retry-after': retryAfter } : {}) }).end('<h1>unavailable</h1>');
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  beforeEach(() => void (served = { keys: [jwks[0]!] }));
  afterEach(() => void ((mode = 'ok'), (retryAfter = undefined)));

  test('a stale cache whose download fails still verifies a token signed with a key it holds', async () => {
    const keySets = new KeySets(0, 100);
    await expect(verifyJwt(await sign('k1'), expectations(), keySets, {} as never)).resolves.toMatchObject({ sub: 'alice' });
    await sleep(150); // the set is stale now: the next use downloads it again, and that fails
    mode = '503';
    const before = downloads;
    await expect(verifyJwt(await sign('k1'), expectations(), keySets, {} as never)).resolves.toMatchObject({ sub: 'alice' });
    expect(downloads - before).toBe(1);
  });

  test.each(['503', '429'] as const)('a kid it does not hold, with the jwks_uri answering %s: op_unavailable (transient), not an invalid token', async (status) => {
    const keySets = new KeySets(0, 100);
    await verifyJwt(await sign('k1'), expectations(), keySets, {} as never);
    mode = status;
    const refused = await verifyJwt(await sign('k2'), expectations(), keySets, {} as never).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RpError);
    expect(refused).toMatchObject({ code: 'op_unavailable', retryAfter: 5 });
    expect((refused as Error).message).toContain(`the OP's keys at ${jwksUri} are unavailable (HTTP ${status})`);
    // (control) once it answers with the new key, the same token verifies
    mode = 'ok';
    served = { keys: jwks };
    await sleep(10);
    await expect(verifyJwt(await sign('k2'), expectations(), keySets, {} as never)).resolves.toMatchObject({ sub: 'alice' });
  });

  test('the jwks_uri\'s own Retry-After is passed on', async () => {
    const keySets = new KeySets(0, 100);
    await verifyJwt(await sign('k1'), expectations(), keySets, {} as never);
    mode = '503';
    retryAfter = '12';
    await expect(verifyJwt(await sign('k2'), expectations(), keySets, {} as never)).rejects.toMatchObject({ code: 'op_unavailable', retryAfter: 12 });
  });
});

describe('an OP whose jwks_uri answers 503 to an instance that holds none of its keys yet', () => {
  let t: TestRp;
  let jwksDown = false;
  beforeAll(async () => {
    t = await startRp({
      op: { ttl: { AccessToken: 2 } },
      rp: { jwksCooldown: 0 },
      routes: tokenRoute,
      provider: {
        // stands in for the OP's load balancer while its key service restarts
        customFetch: async (url, init) => (jwksDown && url.endsWith('/jwks')
          ? new Response('<html>503 Service Unavailable</html>', { status: 503, headers: { 'content-type': 'text/html' } })
          : fetch(url, init as RequestInit)),
      },
    });
  }, 60_000);
  afterAll(() => t.close());
  beforeEach(() => clearStore(t));
  afterEach(() => void (jwksDown = false));

  /** The RP as a new instance (or one whose cache went stale) sees it: no key downloaded yet. */
  const forgetKeys = () => void ((t.relyingParty as unknown as { keySets: KeySets }).keySets = new KeySets(0));

  test('a refresh (its new ID token must be verified): 503 op_unavailable with Retry-After, the login kept; then it works', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    forgetKeys();
    jwksDown = true;
    await sleep(2100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const refused = await agent.get('/token').set('accept', 'application/json');
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    // refused before the refresh token was spent: an OP that rotates it has not replaced it
    expect(t.op.counts.grants.refresh_token ?? 0).toBe(grants);
    expect((await agent.get('/me')).status).toBe(200);
    jwksDown = false;
    expect((await agent.get('/token')).status).toBe(200);
  });

  test('a back-channel logout token the RP cannot check yet (keys unavailable): 503 with Retry-After, so the OP retries, and the retry ends the session', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    forgetKeys();
    jwksDown = true;
    const token = await signLogoutToken(t.op, { sub: 'alice' });
    const refused = await t.agent().post('/auth/backchannel-logout/op').set('accept', 'application/json').type('form').send({ logout_token: token });
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect((await agent.get('/me')).status).toBe(200);
    jwksDown = false;
    expect((await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token })).status).toBe(200);
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('a first login on an instance while the jwks_uri answers 503: refused before the code is spent, so the same answer, tried again once it is back, signs the user in', async () => {
    forgetKeys();
    const agent = t.agent();
    const callback = await t.startLogin(agent, { returnTo: '/me' });
    jwksDown = true;
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const refused = await agent.get(callback.pathname + callback.search).set('accept', 'application/json');
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect(t.op.counts.grants.authorization_code ?? 0).toBe(grants); // the code was not redeemed
    jwksDown = false;
    const retried = await agent.get(callback.pathname + callback.search);
    expect([retried.status, retried.headers.location]).toEqual([302, '/me']);
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('a callback whose ID token names a key the RP cannot download: 503 op_unavailable, no login', async () => {
    forgetKeys();
    jwksDown = true;
    const agent = t.agent();
    const res = await t.login(agent);
    expect([res.status, res.headers['retry-after']]).toEqual([503, '5']);
    expect(res.body.error).toBe('op_unavailable');
    await expectNoLogin(t, agent);
  });
});
