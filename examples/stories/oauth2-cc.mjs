#!/usr/bin/env node
// Client Credentials (IdPyOIDC: demo/oauth2_cc.py), RFC 6749 §4.4.
//
// The client asks for an access token with only its own credentials: one request, one response.
// The token is an RFC 9068 JWT for one API, named by a resource indicator (RFC 8707): its `aud`
// is that API, its `scope` what the client may have of the scopes the API knows (IdPyOIDC:
// allowed_scopes). The claims a scope adds (the resource's claimsByScope, IdPyOIDC's
// add_claims_by_scope) are account claims: a client credentials token has no account, so it
// carries sub = client_id and scope only (oauth2-token-exchange shows claims by scope).
import { defineStory, runIfMain } from './lib/story.mjs';

const API = 'https://example.org/appl';

export const story = defineStory({
  name: 'oauth2-cc',
  seed: 'oauth2_cc.py',
  title: 'Client credentials',
  shows: `an RFC 9068 JWT access token for ${API} (resource indicator): aud, client_id, the scope the client may have`,

  // ================ Server side ===================================
  // op() options (IdPyOIDC: SERVER_CONFIG). The token endpoint authenticates the client with
  // client_secret_basic or client_secret_post; tokens for the API are signed JWTs (at+jwt)
  // living 3600 seconds, with the client's allowed scopes (IdPyOIDC: allowed_scopes).
  server: () => ({
    scopes: ['resourceA', 'resourceB'],
    features: {
      clientCredentials: true,
      resourceIndicators: {
        resources: { [API]: { scope: 'resourceA resourceB', accessTokenFormat: 'jwt', accessTokenTTL: 3600 } },
        defaultResource: API,
      },
    },
    clients: [{
      client_id: 'client_1',
      client_secret: 'another password',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'resourceA', // IdPyOIDC: "allowed_scopes": ["resourceA"]
    }],
  }),

  // ================ Client side ===================================
  // The RelyingParty's provider entry (IdPyOIDC: CLIENT_CONFIG with the client_credentials service).
  client: () => ({
    clientId: 'client_1',
    clientSecret: 'another password',
    tokenEndpointAuthMethod: 'client_secret_basic',
    scope: 'openid',
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const config = await t.relyingParty.providerInfo(t.OP);
      s.check('the discovery document names the token endpoint and the client_credentials grant',
        config.serverMetadata().grant_types_supported?.includes('client_credentials'));
    });

    await t.step('client_credentials', async (s) => {
      const tokens = await t.relyingParty.clientCredentials(t.OP, { scope: 'resourceA', resource: API });
      s.result('relyingParty.clientCredentials()', { access_token: tokens.accessToken.value, token_type: tokens.accessToken.tokenType, scope: tokens.accessToken.scope });
      s.rpVerified('relyingParty.clientCredentials()', 'the token response (HTTP 200, JSON, access_token and token_type present)');
      const claims = await s.jwt('access_token', tokens.accessToken.value, { audience: API, typ: 'at+jwt' });
      s.check(`access_token: sub and client_id are the client (client_1), no user: ${claims.sub} / ${claims.client_id}`, claims.sub === 'client_1' && claims.client_id === 'client_1');
      s.check(`access_token: scope "${claims.scope}" is what client_1 may have of the API's scopes`, claims.scope === 'resourceA');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
