import { defaultViews } from '@openid-express/op';
import { ALICE, aliceWith, browserOf, callbackOf, client, codeRequest, signIn, startCertOp, type FlowFixture } from './cert-support.js';

// Certification modules that depend on how the OP is configured (the app's views, PKCE policy)
describe('oidcc-ui-locales and oidcc-display-popup with the app\'s own views', () => {
  let f: FlowFixture;
  const seen: Array<{ view: string; uiLocales?: string[]; display?: string }> = [];
  beforeAll(async () => {
    f = await startCertOp({ views: {
      login: (p) => { seen.push({ view: 'login', uiLocales: p.uiLocales, display: p.display }); return (defaultViews.login as (x: typeof p) => string)(p); },
      consent: (p) => { seen.push({ view: 'consent', uiLocales: p.uiLocales, display: p.display }); return (defaultViews.consent as (x: typeof p) => string)(p); },
    } });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('the login and consent views are told the languages asked for, in order, and the display', async () => {
    const { tokens } = await aliceWith(f, { ui_locales: 'sv fr-CA en', display: 'popup' });
    expect(tokens.claims()!.sub).toBe('alice');
    expect(seen).toEqual([
      { view: 'login', uiLocales: ['sv', 'fr-CA', 'en'], display: 'popup' },
      { view: 'consent', uiLocales: ['sv', 'fr-CA', 'en'], display: 'popup' },
    ]);
  });
});

// The lab's client may not send PKCE; we require it (RFC 9700 2.1.1), and say so
describe('authorization requests without PKCE', () => {
  let strict: FlowFixture;
  let relaxed: FlowFixture;
  beforeAll(async () => {
    [strict, relaxed] = await Promise.all([startCertOp(), startCertOp({ provider: { pkce: { required: () => false } } })]);
  });
  afterAll(async () => {
    await Promise.all([strict?.op.close(), relaxed?.op.close()]);
  });
  const noPkce = { code_challenge: undefined, code_challenge_method: undefined };

  test('are refused by default, back at the client with a reason and no code', async () => {
    const req = await codeRequest(strict, noPkce);
    const answer = callbackOf(await browserOf(strict).open(req.url)).searchParams;
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/requires PKCE/);
    expect(answer.get('code')).toBeNull();
  });

  test('work once the deployment relaxes pkce.required through the provider escape hatch', async () => {
    const req = await codeRequest(relaxed, noPkce);
    const page = await signIn(browserOf(relaxed), req.url, { login: 'alice', password: ALICE.password });
    const tokens = await client.authorizationCodeGrant(relaxed.web, callbackOf(page), { expectedState: req.params.state, expectedNonce: req.params.nonce });
    expect(tokens.claims()!.sub).toBe('alice');
  });
});
