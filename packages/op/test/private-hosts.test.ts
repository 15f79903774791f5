/**
 * `allowPrivateHosts`: back-channel logout (and oidc-provider's other outgoing requests) may reach
 * RPs on an internal network that is listed, and nothing else private.
 *
 * oidc-provider's SSRF guard cannot install inside jest's VM (it looks up the built-in fetch's Agent
 * class through a global symbol jest does not share), so under jest every host is reachable. The
 * proof is therefore in two parts: under jest, that a real op() delivers to a listed 127.0.0.1 RP
 * and that its requests take our dispatcher; in a plain Node child process, with the guard
 * installed, that the same fetch delivers to a listed host and that unlisted ones stay refused.
 */
import * as client from 'openid-client';
import { memoryAdapter } from '@openid-express/op';
import { fetchRouteFor, parseAllowedHosts, privateHostsFetch } from '../src/private-hosts.js';
import { signIn } from '../../../test/support/op-forms.js';
import { startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE } from './support/op-server.js';
import { plainNodeChild } from './support/plain-node.js';

describe('which way an outgoing request goes', () => {
  const allowed = parseAllowedHosts(['rp.internal', '127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

  test.each([
    ['http://rp.internal/bcl', 'listed'],
    ['http://RP.INTERNAL:8080/bcl', 'listed'],
    ['http://127.0.0.1:3000/bcl', 'listed'],
    ['http://10.20.30.40/bcl', 'listed'],
    ['http://[fd00::1]/bcl', 'listed'],
    ['http://127.0.0.2/bcl', 'protected'],
    ['http://192.168.1.1/bcl', 'protected'],
    ['http://other.internal.invalid/bcl', 'protected'],
  ])('%s → %s', async (url, route) => {
    expect(await fetchRouteFor(allowed, new URL(url))).toBe(route);
  });

  test('a name that resolves into a listed network goes the pinned way', async () => {
    expect(await fetchRouteFor(parseAllowedHosts(['127.0.0.0/8']), new URL('http://localhost/bcl'))).toBe('network');
    expect(await fetchRouteFor(parseAllowedHosts(['127.0.0.1']), new URL('http://localhost/bcl'))).toMatch(/network|protected/);
  });

  test("unlisted destinations keep oidc-provider's options (its guarded dispatcher) untouched", async () => {
    const seen: Array<RequestInit | undefined> = [];
    const fetch = privateHostsFetch(allowed, async (_url, init) => {
      seen.push(init);
      return new Response('ok');
    });
    const guarded = { method: 'POST', dispatcher: { guard: true } } as RequestInit;
    await fetch('http://192.168.1.1/bcl', guarded);
    await fetch('http://rp.internal/bcl', guarded);
    expect(seen[0]).toBe(guarded);
    expect(seen[1]).not.toBe(guarded);
    expect((seen[1] as { dispatcher?: unknown }).dispatcher).not.toEqual({ guard: true });
  });
});

async function logoutDelivered(f: FlowFixture): Promise<boolean> {
  const browser = f.browser();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(f.bcl, {
    redirect_uri: f.redirectUri, scope: 'openid', state, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const done = await signIn(browser, url.href, { login: 'alice', password: ALICE.password });
  const tokens = await client.authorizationCodeGrant(f.bcl, new URL(done.stoppedAt!), { pkceCodeVerifier: verifier, expectedState: state });
  const before = f.logoutTokens.length;
  const confirm = await browser.open(client.buildEndSessionUrl(f.bcl, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${f.op.origin}/bye` }).href);
  await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
  for (let i = 0; i < 60 && f.logoutTokens.length === before; i += 1) await new Promise((r) => setTimeout(r, 50));
  return f.logoutTokens.length > before;
}

describe('back-channel logout from a real op() to an RP on 127.0.0.1 (under jest)', () => {
  afterEach(() => jest.restoreAllMocks());

  test("with allowPrivateHosts: ['127.0.0.1'] the logout token is delivered, through our dispatcher", async () => {
    const f = await startFlowFixture(memoryAdapter(), { allowPrivateHosts: ['127.0.0.1'] });
    const spy = jest.spyOn(globalThis, 'fetch');
    try {
      expect(await logoutDelivered(f)).toBe(true);
      const call = spy.mock.calls.find(([url]) => String(url).endsWith('/backchannel'));
      expect(call).toBeDefined();
      expect(call![1]).toHaveProperty('dispatcher'); // set by the listed route; oidc-provider's own path sets none under jest
    } finally {
      await f.op.close();
    }
  });
});

describe("plain Node, oidc-provider's SSRF guard installed", () => {
  const check = plainNodeChild<{ delivered: boolean; error?: string }>('private-hosts', ['private-hosts', 'errors', 'hourly-warning'], () => CHILD);

  test('a listed 127.0.0.1 RP receives the logout token', async () => {
    expect(await check(['127.0.0.1'])).toEqual({ delivered: true });
  }, 30_000);

  test('without allowPrivateHosts the guard refuses it, and nothing arrives', async () => {
    const result = await check(null);
    expect(result.delivered).toBe(false);
    expect(result.error).toMatch(/special-use|fetch failed|other side closed|socket/i);
  }, 30_000);

  test('listing another private network does not open 127.0.0.1', async () => {
    expect((await check(['10.0.0.0/8', 'rp.internal'])).delivered).toBe(false);
  }, 30_000);
});

/** The child: a real oidc-provider Client sends a back-channel logout to a loopback server. */
const CHILD = `
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import { parseAllowedHosts, privateHostsFetch } from './src/private-hosts.js';
const allow = JSON.parse(process.argv[2]);
let delivered = false;
const server = createServer((req, res) => { delivered = true; req.resume(); res.end(); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const uri = 'http://127.0.0.1:' + server.address().port + '/bcl';
const provider = new Provider('https://op.example.com', {
  clients: [{ client_id: 'bcl', client_secret: 'secret-secret-secret', redirect_uris: ['https://rp.example.com/cb'], backchannel_logout_uri: uri }],
  features: { backchannelLogout: { enabled: true }, devInteractions: { enabled: false } },
  ...(allow ? { fetch: privateHostsFetch(parseAllowedHosts(allow)) } : {}),
});
let error;
try {
  const client = await provider.Client.find('bcl');
  await client.backchannelLogout('alice', 'sid-1');
} catch (e) { error = String(e.cause?.message ?? e.message); }
server.close();
console.log(JSON.stringify({ delivered, ...(error ? { error } : {}) }));
process.exit(0);
`;
