/**
 * What op() says with DEBUG=openid-express:op when a token request is refused: oidc-provider answers
 * only "grant request is invalid", and why (an expired code, which instances whose clocks differ
 * cause) must be somewhere an operator can look, without the code itself.
 */
import { format } from 'node:util';
import debug from 'debug';
import * as jose from 'jose';
import { memoryAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { SECRET, callbackOf, client, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

let f: FlowFixture;
beforeAll(async () => {
  f = await startFlowFixture(memoryAdapter());
});
afterAll(() => f?.op.close());

test('an expired code: the answer is invalid_grant, and the debug log says the code expired, for which client, without the code', async () => {
  const auth = await f.authorization(f.web);
  const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
  const code = callbackOf(page).searchParams.get('code')!;
  const lines: string[] = [];
  // redeemed by an instance whose clock is 2 minutes ahead of the one that issued it (codes live 60 s)
  const real = Date.now.bind(Date);
  const ahead = jest.spyOn(Date, 'now').mockImplementation(() => real() + 120_000);
  const log = jest.spyOn(debug, 'log').mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
  debug.enable('openid-express:op');
  try {
    const refused = await refusal(client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce }));
    expect(refused).toMatchObject({ status: 400, error: 'invalid_grant' });
  } finally {
    ahead.mockRestore();
    debug.disable();
    log.mockRestore();
  }
  const said = lines.join('\n');
  expect(said).toMatch(/token request of client web refused: invalid_grant \(authorization code is expired\)/);
  expect(said).not.toContain(code);
});

test('a visitor cannot forge debug log lines: an id_token_hint whose kid carries CR/LF and a terminal escape is logged quoted', async () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const forged = '2026-01-01T00:00:00.000Z openid-express:op everything is fine';
  const hint = `${b64({ alg: 'RS256', kid: `k\r\n${forged}\u001b[2J` })}.${b64({ iss: f.op.issuer, aud: 'web', sub: 'alice' })}.c2ln`;
  const lines: string[] = [];
  const log = jest.spyOn(debug, 'log').mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
  debug.enable('openid-express:op');
  try {
    await f.browser().open(`${f.op.issuer}/session/end?id_token_hint=${hint}&client_id=web`);
  } finally {
    debug.disable();
    log.mockRestore();
  }
  const said = lines.join('\n');
  expect(said).toContain('does not have (kid "k\\r\\n2026-01-01'); // the line is there, its input escaped
  expect(said.split('\n').some((line) => line.startsWith('2026-01-01'))).toBe(false);
  expect(said).not.toContain('\u001b');
});

test('a request object past its exp: the debug log says which client, why, and names the clocks (checked before its signature: quoted, never a warning)', async () => {
  const auth = new URL((await f.authorization(f.web)).url);
  const params = Object.fromEntries(auth.searchParams);
  const now = Math.floor(Date.now() / 1000);
  // signed with the client's secret, as an app whose clock is a minute ahead of this OP's would
  const request = await new jose.SignJWT({ ...params }).setProtectedHeader({ alg: 'HS256' }).setIssuer('web').setAudience(f.op.issuer)
    .setIssuedAt(now - 90).setExpirationTime(now - 30).sign(new TextEncoder().encode(SECRET));
  const lines: string[] = [];
  const log = jest.spyOn(debug, 'log').mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
  const warn = jest.spyOn(console, 'warn');
  debug.enable('openid-express:op');
  let page;
  try {
    page = await f.browser().open(`${auth.origin}${auth.pathname}?client_id=web&response_type=code&scope=openid&request=${request}`);
  } finally {
    debug.disable();
    log.mockRestore();
  }
  expect(page.status).toBe(400);
  expect(page.html).toContain('invalid_request_object');
  const said = lines.join('\n');
  expect(said).toContain('authorization request of client "web" refused: invalid_request_object "Request Object claims are invalid: jwt expired" '
    + '(past the clock tolerance: oidc-provider\'s clockTolerance, 15 s by default: the JWT is old, or the clocks of the client\'s server and this OP differ');
  expect(warn).not.toHaveBeenCalled();
  warn.mockRestore();
  // another refusal says its own reason and no clock
  lines.length = 0;
  const again = jest.spyOn(debug, 'log').mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
  debug.enable('openid-express:op');
  try {
    await f.browser().open(`${auth.origin}${auth.pathname}?client_id=web&response_type=code&scope=profile&redirect_uri=${encodeURIComponent(params.redirect_uri)}`);
  } finally {
    debug.disable();
    again.mockRestore();
  }
  expect(lines.join('\n')).toMatch(/authorization request of client "web" refused: invalid_request "[^"]*openid[^"]*"$/m);
});
