/**
 * What op() says with DEBUG=openid-express:op when a token request is refused: oidc-provider answers
 * only "grant request is invalid", and why (an expired code, which instances whose clocks differ
 * cause) must be somewhere an operator can look, without the code itself.
 */
import { format } from 'node:util';
import debug from 'debug';
import { memoryAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { callbackOf, client, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

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
  expect(said).toContain('no longer has (kid "k\\r\\n2026-01-01'); // the line is there, its input escaped
  expect(said.split('\n').some((line) => line.startsWith('2026-01-01'))).toBe(false);
  expect(said).not.toContain('\u001b');
});
