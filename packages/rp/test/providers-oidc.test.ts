import { oidc, rp } from '@openid-express/rp';

describe('oidc()', () => {
  test('sends no prompt of its own: offline_access with prompt=consent is the app\'s choice', () => {
    const p = oidc({ issuer: 'https://id.example.com', clientId: 'app', scope: 'openid offline_access' });
    expect(p.authorizationParams).toBeUndefined();
  });

  test('labels the entry with the issuer host', () => {
    expect(oidc({ issuer: 'https://id.example.com/tenant', clientId: 'app' }).label).toBe('id.example.com');
  });

  test('an invalid issuer is a start-up error naming the option, not a TypeError from the preset', () => {
    const entry = oidc({ issuer: 'not a url', clientId: 'app' });
    expect(() => rp({ baseURL: 'https://app.example.com', providers: { corp: entry } })).toThrow(/issuer/);
  });
});

test('oidc(): an option given as undefined keeps its default (the label is the issuer\'s host)', () => {
  expect(oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's', label: undefined }).label).toBe('id.example.com');
});
