/**
 * Session fixation at the OP: the express-session id a browser carries changes when the user signs
 * in, so a cookie an attacker planted before the login is not the one in use after it.
 */
import { signIn } from '../../../test/support/op-forms.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE, BOB } from './support/op-server.js';
import { memoryAdapter } from '@openid-express/op';

let f: FlowFixture;
beforeAll(async () => {
  f = await startFlowFixture(memoryAdapter(), { trustProxy: true });
});
afterAll(() => f.op.close());

/** A session id the attacker got from the OP for themselves: signed in as bob, the logout page writes its CSRF token into the session. */
const attacker = () => attackerBrowser;
let attackerBrowser: ReturnType<FlowFixture['browser']>;
const sessionCookieOf = (b: ReturnType<FlowFixture['browser']>) =>
  b.jar.header(`${f.op.issuer}/session/end`).split('; ').find((c) => c.startsWith('connect.sid='));

async function attackerSessionCookie(): Promise<string> {
  attackerBrowser = f.browser('198.51.100.9');
  const attacker = attackerBrowser;
  await signIn(attacker, (await f.authorization()).url, { login: BOB.username, password: BOB.password });
  await attacker.open(`${f.op.issuer}/session/end`);
  const cookie = sessionCookieOf(attacker);
  if (!cookie) throw new Error('the OP set no session cookie on its logout page');
  return cookie;
}

test('a session cookie planted before the login is not the one in use after it', async () => {
  const planted = await attackerSessionCookie();
  const browser = f.browser('198.51.100.10');
  browser.jar.store(f.op.origin, new Headers([['set-cookie', `${planted}; Path=/`]]));
  const auth = await f.authorization();
  const page = await signIn(browser, auth.url, { login: ALICE.username, password: ALICE.password });
  const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });
  expect(tokens.claims()!.sub).toBe('alice');

  // the planted session is gone from the store: back on the logout page, the attacker's cookie names
  // nothing any more and express-session hands out a new id (a live session would keep its id)
  expect(sessionCookieOf(attacker())).toBe(planted);
  expect((await attacker().open(`${f.op.issuer}/session/end`)).status).toBe(200);
  expect(sessionCookieOf(attacker())).toBeDefined();
  expect(sessionCookieOf(attacker())).not.toBe(planted);

  // and the victim's browser, when it next uses its session, is given a new id, never the planted one
  const logout = await browser.open(`${f.op.issuer}/session/end`);
  expect(logout.status).toBe(200);
  expect(browser.jar.header(f.op.issuer)).not.toContain(planted);
});
