/**
 * microsoft() preset on its own: tenants, the `{tenantid}` issuer template, allowed tenants and
 * the seed's id_token + form_post mode.
 */
import { microsoft, OptionsError, TenantError } from '@openid-express/rp';

const creds = { clientId: '11111111-2222-3333-4444-555555555555', clientSecret: 'secret' };
const template = 'https://login.microsoftonline.com/{tenantid}/v2.0';
const contoso = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const fabrikam = 'aaaabbbb-0000-cccc-1111-dddd2222eeee';

describe('microsoft() preset', () => {
  test('discovers the tenant\'s v2.0 issuer; code flow with PKCE by default', () => {
    expect(microsoft({ ...creds, tenant: 'organizations' })).toMatchObject({
      type: 'oidc', label: 'Microsoft', issuer: 'https://login.microsoftonline.com/organizations/v2.0',
      allowIssuerMismatch: true, responseType: 'code', responseMode: 'query', pkce: true,
      scope: 'openid profile email', tokenEndpointAuthMethod: 'client_secret_post',
    });
    expect(microsoft({ ...creds, tenant: 'common', offline: true }).scope).toBe('openid profile email offline_access');
  });

  test('responseType id_token is the seed\'s mode: form_post, no token endpoint, no secret needed', () => {
    expect(microsoft({ tenant: 'common', clientId: creds.clientId, responseType: 'id_token' })).toMatchObject({
      responseType: 'id_token', responseMode: 'form_post', pkce: false, tokenEndpointAuthMethod: 'none',
    });
  });

  test('multi-tenant: the ID token iss must be the template filled with its own tid', () => {
    const { expectedIssuer } = microsoft({ ...creds, tenant: 'common' });
    expect(expectedIssuer!({ tid: contoso, iss: 'whatever' }, template)).toBe(`https://login.microsoftonline.com/${contoso}/v2.0`);
  });

  test('multi-tenant: an ID token without a usable tid is refused', () => {
    const { expectedIssuer } = microsoft({ ...creds, tenant: 'common' });
    expect(() => expectedIssuer!({}, template)).toThrow(TenantError);
    expect(() => expectedIssuer!({ tid: '../../evil' }, template)).toThrow(/no valid "tid"/);
  });

  test('allowedTenants refuses other tenants, before and after signature verification', () => {
    const config = microsoft({ ...creds, tenant: 'organizations', allowedTenants: [contoso.toUpperCase()] });
    expect(config.expectedIssuer!({ tid: contoso }, template)).toContain(contoso);
    expect(() => config.expectedIssuer!({ tid: fabrikam }, template)).toThrow(/tenant aaaabbbb-.* is not in allowedTenants/);
    expect(() => config.validateIdToken!({ tid: contoso })).not.toThrow();
    expect(() => config.validateIdToken!({ tid: fabrikam })).toThrow(TenantError);
    expect(new TenantError('x').code).toBe('tenant_not_allowed');
  });

  test('single tenant: the metadata issuer is expected as is', () => {
    const own = `https://login.microsoftonline.com/${contoso}/v2.0`;
    expect(microsoft({ ...creds, tenant: contoso }).expectedIssuer!({ tid: fabrikam }, own)).toBe(own);
  });

  test('refuses bad options at start-up, naming the option', () => {
    expect(() => microsoft({ ...creds, tenant: '' })).toThrow(/microsoft\(\): option "tenant" is required/);
    expect(() => microsoft({ ...creds, tenant: 'common/../x' })).toThrow(/"tenant" must be a tenant id/);
    expect(() => microsoft({ tenant: 'common', clientId: 'x' })).toThrow(/responseType "code": option "clientSecret" is required/);
    expect(() => microsoft({ ...creds, tenant: 'common', allowedTenants: [] })).toThrow(/"allowedTenants" must be a non-empty array/);
    expect(() => microsoft({ ...creds, tenant: 'common', responseType: 'token' as never })).toThrow(/"responseType" must be/);
    // an OptionsError (code invalid_options, the option named), as rp()'s own start-up errors are
    let thrown: unknown;
    try { microsoft({ ...creds, tenant: 'common', allowedTenants: [] }); } catch (err) { thrown = err; }
    expect(thrown).toBeInstanceOf(OptionsError);
    expect(thrown).toMatchObject({ code: 'invalid_options', option: 'allowedTenants' });
  });

  test('maps Entra claims to the normalized user, never taking preferred_username as the email', () => {
    const profile = microsoft({ ...creds, tenant: 'common' }).profile!;
    expect(profile({ sub: 's', name: 'Ann', preferred_username: 'ann@contoso.com' })).toEqual({ sub: 's', name: 'Ann', email: undefined });
    expect(profile({ sub: 's', name: 'Ann', email: 'ann@contoso.com' })).toEqual({ sub: 's', name: 'Ann', email: 'ann@contoso.com' });
  });
});
