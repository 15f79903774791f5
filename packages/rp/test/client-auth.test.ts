/**
 * client_secret_basic (RFC 6749 §2.3.1) with ids and secrets as they come: the id and the secret are
 * form-encoded into the Basic header, escaping what must be (`%`, `+`, `:`, `/`, spaces)
 * and leaving the characters that decode to themselves (`-`, `_`, `.`, `~`, ...) as they are, so a
 * real oidc-provider (which decodes) accepts them for the code exchange and the refresh, and an OP
 * that does not decode the header (Glewlwyd, test/interop/glewlwyd.test.ts) accepts `my-app` too.
 */
import { clientSecretBasic } from '../src/provider-metadata.js';
import { startRp, type TestRp } from './support/rp-app.js';

const CLIENT_ID = 'my-app.v2_x~';
// any printable ASCII (RFC 6749 Appendix A.2's VSCHAR; oidc-provider refuses others)
const CLIENT_SECRET = "s3cr%t+with:colon/slash and space-_.!~*'()-0123456789abcdef";

/** The Basic header's user and password as sent (not decoded). */
function basicParts(header: string | null): [string, string] {
  const raw = Buffer.from(String(header).replace(/^Basic /, ''), 'base64').toString();
  const at = raw.indexOf(':');
  return [raw.slice(0, at), raw.slice(at + 1)];
}

describe('client_secret_basic with an id and a secret that need encoding, against oidc-provider', () => {
  let t: TestRp;
  const sent: Array<{ url: string; authorization: string | null; body: string }> = [];

  beforeAll(async () => {
    t = await startRp({
      client: { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
      provider: {
        clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
        customFetch: (url, init) => {
          if (String(url).endsWith('/token')) sent.push({ url: String(url), authorization: new Headers(init.headers).get('authorization'), body: String(init.body) });
          return fetch(url, init as RequestInit);
        },
      },
    });
  });
  afterAll(() => t?.close());

  test('the code exchange and the refresh authenticate; the header escapes only what must be', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect((await agent.get('/me')).status).toBe(200);
    expect((await agent.post('/auth/refresh').send({})).status).toBe(200);

    expect(sent.map((s) => new URLSearchParams(s.body).get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
    for (const s of sent) {
      const [user, password] = basicParts(s.authorization);
      expect(user).toBe(CLIENT_ID); // nothing to escape: '-', '.', '_' and '~' go as they are
      expect(password).toBe("s3cr%25t%2Bwith%3Acolon%2Fslash%20and%20space-_.!~*'()-0123456789abcdef");
      expect(decodeURIComponent(password)).toBe(CLIENT_SECRET);
      expect(new URLSearchParams(s.body).has('client_secret')).toBe(false);
    }
  });

  test('(control) a wrong secret is refused by the OP: the check is real', async () => {
    const headers = new Headers();
    clientSecretBasic(`${CLIENT_SECRET}x`)({} as never, { client_id: CLIENT_ID }, new URLSearchParams(), headers);
    const res = await fetch(`${t.op.issuer}/token`, {
      method: 'POST',
      headers: { authorization: headers.get('authorization')!, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&refresh_token=nothing',
    });
    expect([res.status, (await res.json()).error]).toEqual([401, 'invalid_client']);
  });
});
