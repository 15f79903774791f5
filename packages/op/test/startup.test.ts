import express from 'express';
import request from 'supertest';
import session from 'express-session';
import { generateKeys, memoryAccounts, memoryAdapter, op, OpConfigError, type OpOptions } from '@openid-express/op';
import { privateJwk } from '../../../test/support/private-jwk.js';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const issuer = 'https://id.example.com/op';
const base = { issuer, accounts, adapter: memoryAdapter(), ...generateKeys() };
const API = 'https://api.example.com';
const RESOURCE = `features.resourceIndicators.resources["${API}"]`;
const allow = (): boolean => true;

function startupError(options: unknown): OpConfigError {
  try {
    op(options as OpOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(OpConfigError);
    return err as OpConfigError;
  }
  throw new Error('op() accepted bad options');
}

describe('op() refuses options that cannot work, naming the option', () => {
  test.each([
    ['no options at all', undefined, 'options'],
    ['no issuer', { ...base, issuer: undefined }, 'issuer'],
    ['an issuer that is not a URL', { ...base, issuer: 'id.example.com' }, 'issuer'],
    ['an issuer ending with a slash', { ...base, issuer: 'https://id.example.com/op/' }, 'issuer'],
    ['an issuer with a query', { ...base, issuer: 'https://id.example.com/op?x=1' }, 'issuer'],
    ['no accounts', { ...base, accounts: undefined }, 'accounts'],
    ['a client without client_id', { ...base, clients: [{ client_secret: 'x' }] }, 'clients[0].client_id'],
    ['a client_id listed twice', { ...base, clients: [{ client_id: 'a' }, { client_id: 'a' }] }, 'clients'],
    ['an unknown view', { ...base, views: { signin: () => '' } }, 'views.signin'],
    ['a view that is neither function nor name', { ...base, views: { login: 42 } }, 'views.login'],
    ['an unknown feature', { ...base, features: { implicit: true } }, 'features.implicit'],
    ['a negative lifetime', { ...base, ttl: { AccessToken: -1 } }, 'ttl.AccessToken'],
    ['an unknown lifetime', { ...base, ttl: { Forever: 1 } }, 'ttl.Forever'],
    ['a zero failure limit', { ...base, throttle: { maxFailures: 0 } }, 'throttle.maxFailures'],
    ['an empty authenticator list', { ...base, authenticators: [] }, 'authenticators'],
    ['an authenticator without verify', { ...base, authenticators: [{ id: 'x', fields: () => '' }] }, 'authenticators[0]'],
    ['public keys as jwks', { ...base, jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] } }, 'jwks'],
    ['an RSA key labelled ES256 (before: oidc-provider\'s "of no use, remove it")', { ...base, jwks: { keys: [{ ...generateKeys().jwks.keys[0], alg: 'ES256' }] } }, 'jwks.keys[0]'],
    ['two keys with one kid (a copy made while changing keys)', ((a) => ({ ...base, jwks: { keys: [a, { ...generateKeys().jwks.keys[0], kid: a.kid }] } }))(generateKeys().jwks.keys[0]), 'jwks.keys[1]'],
    ['short cookie keys', { ...base, cookieKeys: ['short'] }, 'cookieKeys'],
    ['a scope with a space', { ...base, scopes: ['api read'] }, 'scopes'],
    ['a non-boolean trustProxy', { ...base, trustProxy: 'yes' }, 'trustProxy'],
    ['something that is not an adapter', { ...base, adapter: {} }, 'adapter'],
    ['a feature given as a string', { ...base, features: { dPoP: 'yes' } }, 'features.dPoP'],
    ['a feature object with more than enabled', { ...base, features: { clientCredentials: { enabled: true, ttl: 5 } } }, 'features.clientCredentials'],
    ['an unknown registration option', { ...base, features: { registration: { enabled: true, policies: {} } } }, 'features.registration.policies'],
    ['an unknown PKCE policy', { ...base, pkce: 'never' }, 'pkce'],
    ['a client without redirect_uris (authorization_code by default)', { ...base, clients: [{ client_id: 'app', client_secret: 's' }] }, 'clients[0].redirect_uris'],
    ['a client with empty redirect_uris', { ...base, clients: [{ client_id: 'app', redirect_uris: [] }] }, 'clients[0].redirect_uris'],
    ['an implicit client without redirect_uris', { ...base, clients: [{ client_id: 'a', client_secret: 's', redirect_uris: ['https://a.example/cb'] }, { client_id: 'spa', grant_types: ['implicit'], response_types: ['id_token'] }] }, 'clients[1].redirect_uris'],
    ['response type code without the authorization_code grant', { ...base, clients: [{ client_id: 'app', client_secret: 's', response_types: ['code'], grant_types: ['implicit'], redirect_uris: ['https://a.example/cb'] }] }, 'clients[0].grant_types'],
    ['the default response type (code) with only client_credentials and redirect_uris', { ...base, features: { clientCredentials: true }, clients: [{ client_id: 'svc', client_secret: 's', grant_types: ['client_credentials'], redirect_uris: ['https://a.example/cb'] }] }, 'clients[0].grant_types'],
    ['a public client (token_endpoint_auth_method none) given a client_secret', { ...base, clients: [{ client_id: 'spa', client_secret: 's', token_endpoint_auth_method: 'none', redirect_uris: ['https://a.example/cb'] }] }, 'clients[0].client_secret'],
    ['a client without client_secret (authenticating with one by default)', { ...base, clients: [{ client_id: 'spa', redirect_uris: ['https://a.example/cb'] }] }, 'clients[0].client_secret'],
    ['client_secret_post with an empty client_secret', { ...base, clients: [{ client_id: 'app', client_secret: '', token_endpoint_auth_method: 'client_secret_post', redirect_uris: ['https://a.example/cb'] }] }, 'clients[0].client_secret'],
    ['redirect_uris as a string', { ...base, clients: [{ client_id: 'app', redirect_uris: 'https://a.example/cb' }] }, 'clients[0].redirect_uris'],
    ['an empty name', { ...base, name: ' ' }, 'name'],
    ['a name that is not a string', { ...base, name: 42 }, 'name'],
    ['an http: logoUri', { ...base, logoUri: 'http://cdn.example/logo.png' }, 'logoUri'],
    ['a protocol-relative logoUri', { ...base, logoUri: '//evil.example/logo.png' }, 'logoUri'],
    ['a javascript: homeUri', { ...base, homeUri: 'javascript:alert(1)' }, 'homeUri'],
    ['resourceIndicators: true (no APIs)', { ...base, features: { resourceIndicators: true } }, 'features.resourceIndicators'],
    ['resourceIndicators without resources', { ...base, features: { resourceIndicators: { resources: {} } } }, 'features.resourceIndicators.resources'],
    ['an unknown resourceIndicators option', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read' } }, getResourceServerInfo: () => ({}) } } }, 'features.resourceIndicators.getResourceServerInfo'],
    ['a resource that is not an absolute URI', { ...base, features: { resourceIndicators: { resources: { api: { scope: 'read' } } } } }, 'features.resourceIndicators.resources["api"]'],
    ['a resource with a fragment', { ...base, features: { resourceIndicators: { resources: { [`${API}#x`]: { scope: 'read' } } } } }, `features.resourceIndicators.resources["${API}#x"]`],
    ['a resource without scopes', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: ' ' } } } } }, `${RESOURCE}.scope`],
    ['a resource given as a scope string', { ...base, features: { resourceIndicators: { resources: { [API]: 'read' } } } }, RESOURCE],
    ['an unknown access token format', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', accessTokenFormat: 'paseto' } } } } }, `${RESOURCE}.accessTokenFormat`],
    ['a negative resource token lifetime', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', accessTokenTTL: -5 } } } } }, `${RESOURCE}.accessTokenTTL`],
    ['an empty audience', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', audience: '' } } } } }, `${RESOURCE}.audience`],
    ['an unknown resource option', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', ttl: 60 } } } } }, `${RESOURCE}.ttl`],
    ['claimsByScope for a scope the resource lacks', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', claimsByScope: { admin: ['email'] } } } } } }, `${RESOURCE}.claimsByScope.admin`],
    ['claimsByScope naming a claim the OP sets', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', claimsByScope: { read: ['sub'] } } } } } }, `${RESOURCE}.claimsByScope.read`],
    ['claimsByScope not a list', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', claimsByScope: { read: 'email' } } } } } }, `${RESOURCE}.claimsByScope.read`],
    ['two resources with one audience', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read', audience: 'api' }, 'https://b.example.com': { scope: 'read', audience: 'api' } } } } }, 'features.resourceIndicators.resources'],
    ['a defaultResource that is not a resource', { ...base, features: { resourceIndicators: { resources: { [API]: { scope: 'read' } }, defaultResource: 'https://other.example.com' } } }, 'features.resourceIndicators.defaultResource'],
    ['tokenExchange: true (no policy)', { ...base, features: { tokenExchange: true, resourceIndicators: { resources: { [API]: { scope: 'read' } } } } }, 'features.tokenExchange'],
    ['tokenExchange: { enabled: true } (no policy)', { ...base, features: { tokenExchange: { enabled: true }, resourceIndicators: { resources: { [API]: { scope: 'read' } } } } }, 'features.tokenExchange.policy'],
    ['a token exchange policy that is not a function', { ...base, features: { tokenExchange: { policy: 'allow' }, resourceIndicators: { resources: { [API]: { scope: 'read' } } } } }, 'features.tokenExchange.policy'],
    ['an unknown tokenExchange option', { ...base, features: { tokenExchange: { policy: allow, actorTokens: true }, resourceIndicators: { resources: { [API]: { scope: 'read' } } } } }, 'features.tokenExchange.actorTokens'],
    ['tokenExchange without resourceIndicators', { ...base, features: { tokenExchange: { policy: allow } } }, 'features.tokenExchange'],
    ['passwordGrant as a string', { ...base, features: { passwordGrant: 'yes' } }, 'features.passwordGrant'],
    ['deviceFlow with oidc-provider options', { ...base, features: { deviceFlow: { enabled: true, charset: 'digits' } } }, 'features.deviceFlow'],
    ['a client listing the password grant while it is off', { ...base, clients: [{ client_id: 'app', client_secret: 's', grant_types: ['password'], response_types: [] }] }, 'clients[0].grant_types'],
    ['a client listing the device grant while it is off', { ...base, clients: [{ client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [] }] }, 'clients[0].grant_types'],
    ['a client listing client_credentials while it is off', { ...base, clients: [{ client_id: 'svc', client_secret: 's', grant_types: ['client_credentials'], response_types: [] }] }, 'clients[0].grant_types'],
    ['a client listing token exchange while it is off', { ...base, clients: [{ client_id: 'gw', client_secret: 's', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], response_types: [] }] }, 'clients[0].grant_types'],
    ['a zero device code lifetime', { ...base, ttl: { DeviceCode: 0 } }, 'ttl.DeviceCode'],
  ])('%s', (_name, options, option) => {
    const err = startupError(options);
    expect(err.option).toBe(option);
    expect(err.code).toBe('op_config_invalid');
    expect(err.message).toContain(option);
  });
});

describe('option names from other libraries or with typos get "did you mean"', () => {
  test.each([
    ['issuerBaseURL', { issuerBaseURL: 'https://x' }, /issuerBaseURL: is not an option of op\(\): did you mean "issuer"\?/],
    ['cookiekeys', { cookiekeys: ['k'] }, /did you mean "cookieKeys"\?/],
    ['adaptor', { adaptor: {} }, /did you mean "adapter"\?/],
    ['findAccount (an oidc-provider setting)', { findAccount: () => undefined }, /findAccount: is not an option of op\(\) \(the options are: issuer, .*raw oidc-provider configuration goes in "provider"\)/],
  ])('%s', (_label, extra, message) => {
    expect(() => op({ ...base, ...extra } as unknown as OpOptions)).toThrow(OpConfigError);
    expect(() => op({ ...base, ...extra } as unknown as OpOptions)).toThrow(message);
  });
});

describe('an accounts store that cannot work is refused at start-up, naming what is missing', () => {
  const good = { findByLogin: async () => undefined, findById: async () => undefined, verifyPassword: async () => undefined, claims: async () => ({}) };
  test.each([
    ['a Promise of a store (a forgotten await)', Promise.resolve(good), /is a Promise: await it before op\(\)/],
    ['a misspelt method', { ...good, findById: undefined, findByID: good.findById }, /is missing findById\(\) of an AccountStore \("findByID" should be "findById"\)/],
    ['no claims() (before: accepted, then a 500 at every code exchange)', { ...good, claims: undefined }, /is missing claims\(\) of an AccountStore: e\.g\. memoryAccounts/],
    ['a class without findByLogin', new (class { findById() {} verifyPassword() {} claims() {} findbylogin() {} })(), /is missing findByLogin\(\) of an AccountStore \("findbylogin" should be "findByLogin"\)/],
  ])('%s', (_label, accounts, message) => {
    const err = startupError({ ...base, accounts });
    expect(err.option).toBe('accounts');
    expect(err.message).toMatch(message);
  });
});

describe('client metadata names oidc-provider would drop without a word are refused, naming the one meant', () => {
  const web = { client_id: 'web', client_secret: 'web-secret-web-secret', redirect_uris: ['https://app.example.com/cb'] };
  test.each([
    ['backchannelLogoutUri (the RP\'s style: back-channel logout was silently off)', { backchannelLogoutUri: 'https://app.example.com/bcl' }, 'clients[0].backchannelLogoutUri', /did you mean "backchannel_logout_uri"\?/],
    ['postLogoutRedirectUris', { postLogoutRedirectUris: ['https://app.example.com/'] }, 'clients[0].postLogoutRedirectUris', /did you mean "post_logout_redirect_uris"\?/],
    ['grant_type (a typo)', { grant_type: ['authorization_code'] }, 'clients[0].grant_type', /did you mean "grant_types"\?/],
    ['a name close to none', { favouriteColour: 'blue' }, 'clients[0].favouriteColour', /snake_case.*extraClientMetadata/],
  ])('%s', (_label, extra, option, message) => {
    const err = startupError({ ...base, clients: [{ ...web, ...extra }] });
    expect(err.option).toBe(option);
    expect(err.message).toContain('client "web"');
    expect(err.message).toMatch(message);
  });

  test('clientId (the RP\'s oidc() spelling) instead of client_id: "required" says it was given, and what OP clients are named', () => {
    const { client_id: _id, ...rest } = web;
    const err = startupError({ ...base, clients: [{ ...rest, clientId: 'web' }] });
    expect(err.option).toBe('clients[0].client_id');
    // before: only "clients[0].client_id: required (a string)"
    expect(err.message).toMatch(/required \(a string\); you gave clientId: OP clients use the client metadata names \(client_id, client_secret, redirect_uris …\)/);
    expect(startupError({ ...base, clients: [rest] }).message).toBe('op(): clients[0].client_id: required (a string)');
  });

  test('the lists oidc-provider\'s rpMetadataChoices lets a client give (id_token_signing_alg_values_supported …) start', () => {
    expect(() => op({ ...base, provider: { features: { rpMetadataChoices: { enabled: true } } },
      clients: [{ ...web, id_token_signing_alg_values_supported: ['ES256', 'RS256'] }] })).not.toThrow();
  });

  test('snake_case metadata, firstParty, and fields the app declares in provider.extraClientMetadata start', () => {
    expect(() => op({ ...base, provider: { extraClientMetadata: { properties: ['tenant'] } },
      clients: [{ ...web, firstParty: true, tenant: 'acme', post_logout_redirect_uris: ['https://app.example.com/'],
        backchannel_logout_uri: 'https://app.example.com/bcl', backchannel_logout_session_required: true, client_name: 'Web' }] })).not.toThrow();
  });
});

describe('client metadata that needs a feature which is off is refused at start-up (oidc-provider would drop it without a word)', () => {
  const web = { client_id: 'web', client_secret: 'web-secret-web-secret', redirect_uris: ['https://app.example.com/cb'] };
  test.each([
    ['encrypted ID tokens', { id_token_encrypted_response_alg: 'RSA-OAEP' }, {}, 'clients[0].id_token_encrypted_response_alg',
      'op({ provider: { features: { encryption: { enabled: true } } } })'],
    ['signed introspection answers', { introspection_signed_response_alg: 'RS256' }, {}, 'clients[0].introspection_signed_response_alg',
      'op({ provider: { features: { jwtIntrospection: { enabled: true } } } })'],
    ['JARM', { authorization_signed_response_alg: 'RS256' }, {}, 'clients[0].authorization_signed_response_alg', 'jwtResponseModes'],
    ['a back channel, with op()\'s backchannelLogout off', { backchannel_logout_uri: 'https://app.example.com/bcl' }, { features: { backchannelLogout: false } },
      'clients[0].backchannel_logout_uri', 'op({ features: { backchannelLogout: true } })'],
    ['a back channel, with backchannelLogout: { enabled: false } (oidc-provider\'s spelling)', { backchannel_logout_uri: 'https://app.example.com/bcl' },
      { features: { backchannelLogout: { enabled: false } } }, 'clients[0].backchannel_logout_uri', 'op({ features: { backchannelLogout: true } })'],
    ['signed introspection with jwtIntrospection on but introspection off', { introspection_signed_response_alg: 'RS256' },
      { features: { introspection: false }, provider: { features: { jwtIntrospection: { enabled: true } } } }, 'clients[0].introspection_signed_response_alg',
      'op({ features: { introspection: true } })'],
    ['signed userinfo, with jwtUserinfo turned off', { userinfo_signed_response_alg: 'RS256' }, { provider: { features: { jwtUserinfo: { enabled: false } } } },
      'clients[0].userinfo_signed_response_alg', 'jwtUserinfo'],
  ])('%s', (_label, metadata, options, option, how) => {
    const err = startupError({ ...base, ...options, clients: [{ ...web, ...metadata }] } as OpOptions);
    expect(err.option).toBe(option);
    expect(err.message).toContain('client "web"');
    expect(err.message).toContain('it is off: oidc-provider would drop');
    expect(err.message).toContain(how);
  });

  test('with the feature on they start: encryption through provider.features, signed userinfo by default', () => {
    expect(() => op({ ...base, provider: { features: { encryption: { enabled: true } } },
      clients: [{ ...web, id_token_encrypted_response_alg: 'RSA-OAEP', jwks: { keys: [] } }] })).not.toThrow();
    expect(() => op({ ...base, clients: [{ ...web, userinfo_signed_response_alg: 'RS256' }] })).not.toThrow();
  });
});

describe('clients that sign users in need redirect_uris, said at start-up naming the client', () => {
  test('the message names the client and shows what to add', () => {
    const err = startupError({ ...base, clients: [{ client_id: 'web', client_secret: 'web-secret-web-secret' }] });
    expect(err.message).toContain('client "web"');
    expect(err.message).toContain('authorization_code grant (the default)');
    expect(err.message).toContain("redirect_uris: ['https://app.example.com/auth/callback']");
    expect(err.message).toContain("grant_types: ['client_credentials'], response_types: []");
  });

  test('a PAR-only client without redirect_uris, while PAR requests may not bring unregistered ones, is told how to allow them', () => {
    const err = startupError({ ...base, clients: [{ client_id: 'par', client_secret: 's', require_pushed_authorization_requests: true }] });
    expect(err.option).toBe('clients[0].redirect_uris');
    expect(err.message).toContain('allowUnregisteredRedirectUris: true');
  });

  test('with that switch, the PAR-only client pushes a request with a redirect URI of its choosing and the browser gets the login page', async () => {
    const opApp = op({ ...base, provider: { features: { pushedAuthorizationRequests: { allowUnregisteredRedirectUris: true } } },
      clients: [{ client_id: 'par', client_secret: 'par-secret', require_pushed_authorization_requests: true }] });
    const app = express().use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false })).use('/op', opApp);
    const pushed = await request(app).post('/op/request').auth('par', 'par-secret').type('form').send({
      client_id: 'par', response_type: 'code', scope: 'openid', redirect_uri: 'https://anywhere.example.com/cb', state: 's', nonce: 'n',
    });
    expect([pushed.status, pushed.body.request_uri]).toEqual([201, expect.stringContaining('urn:ietf:params:oauth:request_uri:')]);
    const auth = await request(app).get('/op/auth').query({ client_id: 'par', request_uri: pushed.body.request_uri });
    expect([auth.status, auth.headers.location]).toEqual([303, expect.stringContaining('/op/interaction/')]);
  });

  test('a client_credentials-only client, a PAR-only client and a client with redirect_uris start', () => {
    // a PAR-only client may go without redirect_uris where oidc-provider's own switch allows it
    const par = { provider: { features: { pushedAuthorizationRequests: { allowUnregisteredRedirectUris: true } } } };
    expect(() => op({ ...base, ...par, features: { clientCredentials: true }, clients: [
      { client_id: 'service', client_secret: 's', grant_types: ['client_credentials'], response_types: [] },
      { client_id: 'par', client_secret: 's', require_pushed_authorization_requests: true },
      { client_id: 'web', client_secret: 's', redirect_uris: ['https://app.example.com/cb'] },
    ] })).not.toThrow();
  });
});

describe('a client authenticating with a secret needs one, said at start-up, not at its first sign-in', () => {
  test('the message names the client and says what a server-side app and a browser app each set', () => {
    const err = startupError({ ...base, clients: [{ client_id: 'spa', redirect_uris: ['https://app.example.com/cb'] }] });
    expect(err.message).toContain('client "spa" has no client_secret');
    expect(err.message).toContain('token_endpoint_auth_method is client_secret_basic (the default)');
    expect(err.message).toContain("token_endpoint_auth_method: 'none'");
  });

  test('a public client, a private_key_jwt client and a client with a secret start, and the public one signs in without a secret', async () => {
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4', y: '4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM', use: 'sig' }] };
    const opApp = op({ ...base, clients: [
      { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.com/cb'] },
      { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks, redirect_uris: ['https://jwt.example.com/cb'] },
      { client_id: 'web', client_secret: 's', redirect_uris: ['https://app.example.com/cb'] },
    ] });
    const app = express().use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false })).use('/op', opApp);
    const auth = await request(app).get('/op/auth').query({
      client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: 'https://spa.example.com/cb', state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    });
    expect([auth.status, auth.headers.location]).toEqual([303, expect.stringContaining('/op/interaction/')]);
  });
});

describe("every client's metadata is checked at start-up as oidc-provider checks it at the client's first sign-in", () => {
  const cb = ['https://app.example.com/cb'];
  test.each([
    ['a redirect URI with a fragment', { redirect_uris: ['https://app.example.com/cb#x'] }, 'redirect_uris must not contain fragments'],
    ['a redirect URI that is not a URL', { redirect_uris: ['localhost:3000/cb'] }, 'redirect_uris must only contain web uris'],
    ['an unknown token_endpoint_auth_method', { redirect_uris: cb, token_endpoint_auth_method: 'secret' }, 'token_endpoint_auth_method must be'],
    ['post_logout_redirect_uris as a string', { redirect_uris: cb, post_logout_redirect_uris: 'https://app.example.com/' }, 'post_logout_redirect_uris must be an array'],
    ['an ID token algorithm the OP has no key for', { redirect_uris: cb, id_token_signed_response_alg: 'ES256' }, 'id_token_signed_response_alg must be'],
    ['a scope the OP does not know', { redirect_uris: cb, scope: 'openid nonsense' }, 'scope must only contain'],
  ])('%s', (_name, metadata, description) => {
    const err = startupError({ ...base, clients: [{ client_id: 'ok', client_secret: 's', redirect_uris: cb }, { client_id: 'app', client_secret: 's', ...metadata }] });
    expect(err.option).toBe('clients[1]');
    expect(err.code).toBe('op_config_invalid');
    expect(err.message).toContain('client "app": ');
    expect(err.message).toContain(description);
  });

  test('an implicit client with an http: redirect URI (public, no secret) is refused too', () => {
    const err = startupError({ ...base, clients: [{ client_id: 'spa', token_endpoint_auth_method: 'none', response_types: ['id_token'], grant_types: ['implicit'], redirect_uris: ['http://app.example.com/cb'] }] });
    expect([err.option, err.message]).toEqual(['clients[0]', expect.stringContaining('MUST only register URLs using the https scheme')]);
  });
});

describe('name, logoUri and homeUri', () => {
  test('take a name, an https: or same-site logo and an http(s) or same-site home', () => {
    for (const extra of [{ name: 'Example ID', logoUri: 'https://cdn.example/logo.svg', homeUri: 'http://localhost:3000/' },
      { logoUri: '/static/logo.svg', homeUri: '/account' }]) {
      expect(() => op({ ...base, ...extra })).not.toThrow();
    }
  });

  test('a logoUri on another origin through a backslash is refused', () => {
    expect(startupError({ ...base, logoUri: '/\\evil.example/logo.png' }).option).toBe('logoUri');
  });
});

describe("features accept true/false and oidc-provider's { enabled } with the same meaning", () => {
  const metadata = async (features: unknown) => {
    const app = express().use('/op', op({ ...base, features } as OpOptions));
    return (await request(app).get('/op/.well-known/openid-configuration')).body;
  };

  test('clientCredentials: { enabled: true } turns the grant on, like true', async () => {
    expect((await metadata({ clientCredentials: { enabled: true } })).grant_types_supported).toContain('client_credentials');
    expect((await metadata({ clientCredentials: true })).grant_types_supported).toContain('client_credentials');
    expect((await metadata({ clientCredentials: { enabled: false } })).grant_types_supported).not.toContain('client_credentials');
  });

  test('registration: { enabled: false } is off, { enabled: true } and { initialAccessToken } are on', async () => {
    expect((await metadata({ registration: { enabled: false } })).registration_endpoint).toBeUndefined();
    expect((await metadata({ registration: { enabled: true } })).registration_endpoint).toMatch(/\/op\/reg$/);
    expect((await metadata({ registration: { initialAccessToken: 'secret-token' } })).registration_endpoint).toMatch(/\/op\/reg$/);
  });

  test('dPoP: { enabled: false } is off', async () => {
    expect((await metadata({ dPoP: { enabled: false } })).dpop_signing_alg_values_supported).toBeUndefined();
    expect((await metadata({})).dpop_signing_alg_values_supported).toBeDefined();
  });

  test('the grants of issue #10: on with their options, off with false or { enabled: false }', async () => {
    const resourceIndicators = { resources: { [API]: { scope: 'read' } } };
    const on = await metadata({ deviceFlow: { enabled: true }, resourceIndicators, tokenExchange: { policy: () => true } });
    expect(on.device_authorization_endpoint).toMatch(/\/op\/device\/auth$/);
    expect(on.grant_types_supported).toEqual(expect.arrayContaining(['urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:token-exchange']));
    const off = await metadata({ deviceFlow: false, resourceIndicators: { enabled: false, ...resourceIndicators }, tokenExchange: { enabled: false }, passwordGrant: { enabled: false } });
    expect(off.device_authorization_endpoint).toBeUndefined();
    expect(off.grant_types_supported).not.toEqual(expect.arrayContaining(['urn:ietf:params:oauth:grant-type:token-exchange']));
    expect(off.grant_types_supported).not.toContain('password');
  });
});

describe('op() in production', () => {
  const env = process.env.NODE_ENV;
  afterEach(() => {
    process.env.NODE_ENV = env;
    jest.restoreAllMocks();
  });

  test('refuses to start without keys and says how to make them', () => {
    process.env.NODE_ENV = 'production';
    const err = startupError({ issuer, accounts, adapter: memoryAdapter() });
    expect(err.option).toBe('jwks');
    expect(err.message).toContain('generateKeys');
    const noCookieKeys = startupError({ issuer, accounts, adapter: memoryAdapter(), jwks: generateKeys().jwks });
    expect(noCookieKeys.option).toBe('cookieKeys');
  });

  test('starts with keys, and warns loudly when records would live in memory', () => {
    process.env.NODE_ENV = 'production';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(() => op({ issuer, accounts, ...generateKeys() })).not.toThrow();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/NODE_ENV=production but no `adapter`/);
    warn.mockClear();
    op({ issuer, accounts, ...generateKeys(), adapter: memoryAdapter() });
    expect(warn).not.toHaveBeenCalled();
  });

  test('an http issuer warns loudly (clients would send secrets and tokens in clear); https and loopback do not', () => {
    process.env.NODE_ENV = 'production';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    op({ issuer: 'http://id.example.com/op', accounts, ...generateKeys(), adapter: memoryAdapter() });
    expect(warn.mock.calls.flat().join(' ')).toMatch(/NODE_ENV=production but the issuer is http \(http:\/\/id\.example\.com\/op\).*requires https/);
    warn.mockClear();
    op({ issuer: 'https://id.example.com/op', accounts, ...generateKeys(), adapter: memoryAdapter() });
    op({ issuer: 'http://127.0.0.1:3001/op', accounts, ...generateKeys(), adapter: memoryAdapter() });
    expect(warn).not.toHaveBeenCalled();
  });

  test('in development, missing keys are generated with a warning', () => {
    process.env.NODE_ENV = 'development';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(() => op({ issuer, accounts, adapter: memoryAdapter() })).not.toThrow();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/generated throwaway keys/);
  });
});

describe('op() mounted where the issuer does not say', () => {
  test('app.use at another path is a start-up error naming both paths', () => {
    const app = express();
    let err: unknown;
    try {
      app.use('/id', op(base));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpConfigError);
    expect((err as Error).message).toContain('"/op"');
    expect((err as Error).message).toContain('"/id"');
  });

  test('mounted at the right path, it starts', () => {
    expect(() => express().use('/op', op(base))).not.toThrow();
  });

  test('through a sub-app mounted afterwards (id.use(\'/id\', op()), then app.use(\'/auth\', id)) at the right path, it starts and serves (before: refused at start-up); at a wrong one, the start-up error', async () => {
    const issuer = 'https://id.example.com/auth/id';
    const id = express();
    id.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    expect(() => id.use('/id', op({ ...base, issuer }))).not.toThrow();
    const app = express();
    expect(() => app.use('/auth', id)).not.toThrow();
    expect((await request(app).get('/auth/id/.well-known/openid-configuration')).body.issuer).toBe(issuer);
    const wrong = express();
    wrong.use('/id', op({ ...base, issuer }));
    expect(() => express().use('/elsewhere', wrong)).toThrow(OpConfigError);
  });

  test('behind a router at another path, requests get a 500 that says so (JSON for APIs)', async () => {
    const app = express();
    const router = express.Router();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    router.use('/elsewhere', op(base));
    app.use(router);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await request(app).get('/elsewhere/.well-known/openid-configuration').set('accept', 'application/json');
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('mount_mismatch');
    expect(res.body.error_description).toContain("app.use('/op'");
    expect(error).toHaveBeenCalled();
    error.mockRestore();
  });

  test('mounted below the issuer\'s path (/op/x for /op), requests get the same 500, the API endpoints too', async () => {
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    const router = express.Router();
    router.use('/op/x', op(base));
    app.use(router);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    for (const path of ['/op/x/.well-known/openid-configuration', '/op/x/jwks', '/op/x/interaction/abc']) {
      const res = await request(app).get(path).set('accept', 'application/json');
      expect([path, res.status, res.body.code]).toEqual([path, 500, 'mount_mismatch']);
    }
    error.mockRestore();
  });
});

describe('hostile request shapes get a 4xx, never a 500', () => {
  const app = express().use('/op', op(base));

  test('a path under the mount in another letter case is a 404 (the issuer path is case-sensitive), not a 500', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    for (const path of ['/OP/jwks', '/Op/.well-known/openid-configuration', '/oP/session/end']) {
      const res = await request(app).get(path).set('accept', 'application/json');
      expect([path, res.status, res.body.error]).toEqual([path, 404, 'not_found']);
    }
    const page = await request(app).get('/OP/jwks').set('accept', 'text/html');
    expect(page.status).toBe(404);
    expect(page.text).toContain('/op/jwks');
    expect(error).not.toHaveBeenCalled(); // not a misconfiguration
    error.mockRestore();
  });

  test.each(['127.0.0.1:99999', 'a b', 'id.example.com:abc', 'x@y', '[::1'])('Host: %s is a 400 on discovery, end-session and registration', async (host) => {
    const registering = express().use('/op', op({ ...base, features: { registration: true } }));
    for (const [method, path] of [['get', '/op/.well-known/openid-configuration'], ['get', '/op/session/end'], ['post', '/op/reg']] as const) {
      const res = await request(registering)[method](path).set('host', host).set('accept', 'application/json');
      expect([path, res.status, res.body.error]).toEqual([path, 400, 'invalid_request']);
    }
  });

  test('the Host remembered as well-formed lets no other through: valid and malformed Hosts interleaved on one OP', async () => {
    const app = express().use('/op', op(base));
    const discovery = '/op/.well-known/openid-configuration';
    for (const host of ['127.0.0.1:3000', '127.0.0.1:99999', '127.0.0.1:3000', 'a b', 'id.example.com', 'id.example.com:abc', 'id.example.com']) {
      const res = await request(app).get(discovery).set('host', host).set('accept', 'application/json');
      expect([host, res.status]).toEqual([host, host.includes(' ') || /:(99999|abc)$/.test(host) ? 400 : 200]);
      if (res.status === 200) expect(res.body.issuer).toBe(base.issuer);
    }
  });
});

describe('op() without express-session before it', () => {
  test('the routes that use the browser session answer 500 saying what to add, as a page for browsers and JSON for APIs', async () => {
    const app = express();
    app.use('/op', op(base));
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const page = await request(app).get('/op/session/end').set('accept', 'text/html');
    expect(page.status).toBe(500);
    expect(page.text).toContain('app.use(session(');
    expect(page.text).toContain('session_missing');
    const api = await request(app).post('/op/interaction/abc/login').set('accept', 'application/json').send('login=alice');
    expect(api.status).toBe(500);
    expect(api.body).toMatchObject({ error: 'server_error', code: 'session_missing' });
    error.mockRestore();
  });

  test('the API endpoints (token, discovery) never needed it and answer as usual', async () => {
    const app = express();
    app.use('/op', op(base));
    const token = await request(app).post('/op/token').set('accept', 'application/json').send('grant_type=client_credentials');
    expect(token.status).toBe(400);
    expect(token.body.error).toBe('invalid_request');
    expect((await request(app).get('/op/.well-known/openid-configuration')).status).toBe(200);
  });
});

describe('op() at the root of a host', () => {
  test('an issuer without a path mounts at the root and serves discovery there', async () => {
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use(op({ ...base, issuer: 'https://id.example.com' }));
    const res = await request(app).get('/.well-known/openid-configuration');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe('https://id.example.com');
  });

  test("the app's own routes mounted after it are reached; a path nobody serves gets the app's 404", async () => {
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use(op({ ...base, issuer: 'https://id.example.com' }));
    app.get('/home', (_req, res) => void res.send('home page'));
    app.use((_req, res) => void res.status(404).send('the app\'s own 404'));
    const home = await request(app).get('/home');
    expect([home.status, home.text]).toEqual([200, 'home page']); // before: op()'s "There is no GET /home here"
    const nothing = await request(app).get('/nothing');
    expect([nothing.status, nothing.text]).toEqual([404, 'the app\'s own 404']);
    expect((await request(app).get('/.well-known/openid-configuration')).body.issuer).toBe('https://id.example.com');
    expect((await request(app).get('/jwks')).status).toBe(200);
  });

  test("those routes get the request and the answer as op() found them: the app's CORS headers, Host and X-Forwarded-Host", async () => {
    const app = express();
    app.use((_req, res, next) => void (res.setHeader('Access-Control-Allow-Origin', '*'), next())); // an app-wide cors()
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use(op({ ...base, issuer: 'https://id.example.com' }));
    app.get('/api/data', (req, res) => void res.json({ host: req.headers.host, forwarded: req.headers['x-forwarded-host'] }));
    const res = await request(app).get('/api/data').set('host', 'api.example.com').set('x-forwarded-host', 'www.example.com');
    expect(res.body).toEqual({ host: 'api.example.com', forwarded: 'www.example.com' }); // before: id.example.com, and none
    expect(res.headers['access-control-allow-origin']).toBe('*');
    // op()'s own answers keep its own rules
    const discovery = await request(app).get('/.well-known/openid-configuration').set('host', 'api.example.com');
    expect(discovery.body.issuer).toBe('https://id.example.com');
  });
});

describe('generateKeys()', () => {
  test('gives a usable RS256 private JWK with a kid, and a cookie key', async () => {
    const { createPrivateKey, createPublicKey, sign, verify } = await import('node:crypto');
    const { jwks, cookieKeys } = generateKeys();
    const [key] = jwks.keys;
    expect(key).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', kid: expect.any(String) });
    const privateKey = createPrivateKey({ key: key as never, format: 'jwk' });
    const signature = sign('sha256', Buffer.from('x'), privateKey);
    expect(verify('sha256', Buffer.from('x'), createPublicKey(privateKey), signature)).toBe(true);
    expect(cookieKeys[0]).toMatch(/^[\w-]{43}$/);
  });

  test('never exports a KeyObject the key generation made (on Node 20 that export can deadlock the process)', async () => {
    // Node 20: a garbage collection during `keyObject.export({ format: 'jwk' })` can free the
    // generation job, whose destructor waits on the lock the export holds; a jest worker hung in CI.
    const { generateKeyPairSync } = await import('node:crypto');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spies = [pair.privateKey, pair.publicKey].map((k) => jest.spyOn(Object.getPrototypeOf(k) as { export: () => unknown }, 'export'));
    try {
      generateKeys();
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});

describe('signing keys without a kid', () => {
  test("each gets oidc-provider's own kid (its thumbprint), the app's jwks object is left as it was", async () => {
    const { createHash } = await import('node:crypto');
    const ec = privateJwk('ec');
    const rsa = { ...generateKeys().jwks.keys[0]! };
    const jwks = { keys: [{ ...ec, alg: 'ES256', use: 'sig' }, rsa] };
    const before = JSON.stringify(jwks);
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use('/op', op({ ...base, jwks: jwks as never }));
    const res = await request(app).get('/op/jwks');
    expect(res.status).toBe(200);
    const thumbprint = createHash('sha256').update(JSON.stringify({ crv: ec.crv, kty: 'EC', x: ec.x, y: ec.y })).digest('base64url');
    expect(res.body.keys.map((k: { kid: string }) => k.kid)).toEqual([thumbprint, rsa.kid]);
    expect(JSON.stringify(jwks)).toBe(before);
  });
});

describe('an app-wide express-session before op() and op()\'s own `session` option', () => {
  test('says once that op() uses the app\'s session, and what to do', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const app = express();
      app.use(session({ name: 'app.sid', secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
      app.use('/op', op({ ...base, session: session({ name: 'op.sid', secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }) }));
      await request(app).get('/op/session/end');
      await request(app).get('/op/session/end');
      const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('`session` option'));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/an express-session of the app ran before op\(\).*Mount the app's session on the app's own paths only/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('an option given as undefined (an unset environment variable) keeps its default', () => {
  test('throttle and ttl members: the defaults hold, not undefined (which turned off the lock-out and broke every TTL)', async () => {
    const { resolveOptions } = await import('../src/options.js');
    const o = resolveOptions({ ...base, throttle: { maxFailures: undefined, windowSeconds: undefined }, ttl: { Session: undefined, AccessToken: 600 } });
    expect(o.throttle).toEqual({ maxFailures: 5, maxAccountFailures: 100, windowSeconds: 900 });
    expect(o.ttl.Session).toBe(14 * 24 * 3600);
    expect(o.ttl.AccessToken).toBe(600);
  });
});
