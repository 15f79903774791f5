#!/usr/bin/env node
// Resource Owner Password Credentials (IdPyOIDC: demo/oauth2_ropc.py), RFC 6749 §4.3.
//
// The client sends the user's username and password to the token endpoint and gets tokens back,
// with no browser. OAuth 2.1 removes this grant: op() keeps it off unless `features.passwordGrant`
// is set, and warns at start-up when it is. A wrong password is refused (and counts toward the
// same lock-out as the OP's login form).
import { defineStory, runIfMain } from './lib/story.mjs';
import { ALICE } from './lib/servers.mjs';

export const story = defineStory({
  name: 'oauth2-ropc',
  seed: 'oauth2_ropc.py',
  title: 'Resource owner password credentials',
  shows: 'the password grant (an opt-in on the OP, warned): tokens for the user\'s username and password; a wrong password refused',

  // ================ Server side ===================================
  // op() options (IdPyOIDC: SERVER_CONFIG with the resource_owner_password_credentials grant).
  server: () => ({
    features: { passwordGrant: true },
    clients: [{
      client_id: 'client_1',
      client_secret: 'another password',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['password', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    }],
  }),

  // ================ Client side ===================================
  // The RelyingParty's provider entry (IdPyOIDC: CLIENT_CONFIG with the resource_owner_password_credentials service).
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
      s.check('the discovery document lists the password grant', config.serverMetadata().grant_types_supported?.includes('password'));
    });

    await t.step('password_grant', async (s) => {
      const tokens = await t.relyingParty.passwordGrant(t.OP, { username: ALICE.username, password: ALICE.password, scope: 'offline_access' });
      s.result('relyingParty.passwordGrant()', { access_token: tokens.accessToken.value, token_type: tokens.accessToken.tokenType, refresh_token: tokens.refreshToken });
      s.rpVerified('relyingParty.passwordGrant()', 'the token response (HTTP 200, JSON, access_token and token_type present)');
      s.check('an access token was issued for the user', typeof tokens.accessToken.value === 'string' && tokens.accessToken.value.length > 0);
      const info = await t.relyingParty.introspect(t.OP, tokens.accessToken.value);
      s.check(`introspection: active, for ${info.sub} (the user, not the client)`, info.active === true && info.sub === ALICE.id);
    });

    await t.step('password_grant (wrong password)', async (s) => {
      await s.refused(t.relyingParty.passwordGrant(t.OP, { username: ALICE.username, password: 'not-her-password' }), 'invalid_grant', 'the password grant with a wrong password');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
