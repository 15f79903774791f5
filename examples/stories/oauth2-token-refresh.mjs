#!/usr/bin/env node
// Refresh Token (IdPyOIDC: demo/oauth2_token_refresh.py), RFC 6749 §6.
//
// The login asked for offline_access and got a refresh token; the client uses it for a new
// access token with a narrower scope (a subset of what was granted, §6).
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-token-refresh',
  seed: 'oauth2_token_refresh.py',
  title: 'Refresh token',
  shows: 'a refresh token from the code flow, then the refresh grant asking for a narrower scope',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: usage_rules.authorization_code.supports_minting [access_token,
  // refresh_token] and refresh_token.supports_minting [access_token]. Ours: clients that list the
  // refresh_token grant get one when they ask offline_access (and consent was asked).
  server: ({ redirectUri }) => ({
    scopes: ['foobar'],
    ttl: { AccessToken: 600, RefreshToken: 86400 },
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: the refresh_token service. Ours: relyingParty.refresh(auth, { scope }).
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid offline_access profile foobar',
    authorizationParams: { prompt: 'consent' }, // offline_access needs the consent prompt (OIDC Core 11)
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP offers the refresh_token grant', metadata.grant_types_supported?.includes('refresh_token'));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      await s.jwt('id_token', login.idToken, { audience: 'client' });
      s.check(`a refresh token came with scope "${login.accessToken.scope}"`, !!login.refreshToken && login.accessToken.scope.split(' ').includes('foobar'));
      return login;
    });

    await t.step('refresh_token', async (s) => {
      const refreshed = await t.relyingParty.refresh(auth, { scope: 'openid foobar' });
      tokenResponse(s, refreshed, 'relyingParty.refresh()');
      s.rpVerified('relyingParty.refresh()', 'the token response and its new ID token (signature, iss, aud, exp, same sub)');
      const granted = new Set(auth.accessToken.scope.split(' '));
      const scope = refreshed.accessToken.scope.split(' ');
      s.check(`the new access token's scope "${refreshed.accessToken.scope}" is narrower than "${auth.accessToken.scope}"`,
        scope.every((x) => granted.has(x)) && scope.length < granted.size && !scope.includes('profile'));
      s.check('it is a new access token', refreshed.accessToken.value !== auth.accessToken.value);
      if (refreshed.idToken) await s.jwt('id_token', refreshed.idToken, { audience: 'client' });
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
