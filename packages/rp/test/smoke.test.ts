import * as client from 'openid-client';
import Provider from 'oidc-provider';

test('the toolchain loads openid-client and oidc-provider', () => {
  expect(typeof client.discovery).toBe('function');
  expect(typeof Provider).toBe('function');
});
