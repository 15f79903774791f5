/**
 * google() preset on its own: what it asks for, and the checks it hands to the core
 * (scheme-less issuer, hosted domain).
 */
import { google, HostedDomainError } from '@openid-express/rp';

const creds = { clientId: 'id.apps.googleusercontent.com', clientSecret: 'secret' };

describe('google() preset', () => {
  test('discovers accounts.google.com and asks for openid email profile with PKCE, code flow', () => {
    expect(google(creds)).toMatchObject({
      type: 'oidc', label: 'Google', issuer: 'https://accounts.google.com', scope: 'openid email profile',
      responseType: 'code', pkce: true, tokenEndpointAuthMethod: 'client_secret_basic',
    });
    expect(google(creds).authorizationParams).toEqual({});
  });

  test('offline: true asks for a refresh token the way Google requires', () => {
    expect(google({ ...creds, offline: true }).authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
  });

  test('accepts "accounts.google.com" without scheme as Google, and nothing else', () => {
    const { expectedIssuer } = google(creds);
    const metadata = 'https://accounts.google.com';
    expect(expectedIssuer!({ iss: 'accounts.google.com' }, metadata)).toBe('accounts.google.com');
    expect(expectedIssuer!({ iss: 'https://accounts.google.com' }, metadata)).toBe(metadata);
    // Any other value must still equal the metadata issuer, so the core's check refuses it.
    expect(expectedIssuer!({ iss: 'evil.example' }, metadata)).toBe(metadata);
    expect(expectedIssuer!({ iss: 'http://accounts.google.com' }, metadata)).toBe(metadata);
  });

  test('hostedDomain sends hd and refuses an ID token from another domain, or from a consumer account', () => {
    const config = google({ ...creds, hostedDomain: 'example.com' });
    expect(config.authorizationParams).toEqual({ hd: 'example.com' });
    expect(() => config.validateIdToken!({ hd: 'example.com' })).not.toThrow();
    expect(() => config.validateIdToken!({ hd: 'evil.example' })).toThrow(HostedDomainError);
    expect(() => config.validateIdToken!({})).toThrow(/not the required hosted domain "example.com"/);
  });

  test('without hostedDomain no hd check is made', () => {
    expect(google(creds).validateIdToken).toBeUndefined();
  });

  test('maps Google claims to the normalized user', () => {
    expect(google(creds).profile!({ sub: '1234', name: 'Ann', email: 'ann@example.com', email_verified: true, picture: 'https://p/1' })).toEqual({
      sub: '1234', name: 'Ann', email: 'ann@example.com', emailVerified: true, picture: 'https://p/1',
    });
  });

  test('refuses missing credentials and a non-https issuer at start-up', () => {
    expect(() => google({ clientId: 'x' } as never)).toThrow(/google\(\): option "clientSecret" is required/);
    expect(() => google({ ...creds, issuer: 'http://127.0.0.1:1' })).toThrow(/"issuer" must be an https: URL/);
    expect(() => google({ ...creds, issuer: 'http://127.0.0.1:1', allowInsecureRequests: true })).not.toThrow();
  });
});
