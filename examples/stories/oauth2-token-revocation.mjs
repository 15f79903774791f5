#!/usr/bin/env node
// Token Revocation, RFC 7009, and Introspection, RFC 7662 (IdPyOIDC: demo/oauth2_token_revocation.py).
//
// The client asks the OP about its tokens (introspection: active, scope, sub …), revokes the
// refresh token, and asks again: the token is inactive, and the refresh grant with it is refused.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-token-revocation',
  seed: 'oauth2_token_revocation.py',
  title: 'Token revocation and introspection',
  shows: 'introspection (active), the refresh token revoked, introspection (inactive), the refresh grant refused',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: endpoints token_revocation (TokenRevocation) and introspection
  // (Introspection). Ours: features.revocation and features.introspection (both on by default).
  server: ({ redirectUri }) => ({
    features: { revocation: true, introspection: true },
    scopes: ['foobar'],
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: the token_revocation and introspection services. Ours: relyingParty.revoke() and .introspect().
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid offline_access foobar',
    authorizationParams: { prompt: 'consent' },
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP has revocation and introspection endpoints', !!(metadata.revocation_endpoint && metadata.introspection_endpoint));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      s.check('a refresh token came with the access token', !!login.refreshToken);
      return login;
    });

    await t.step('introspection', async (s) => {
      const info = await t.relyingParty.introspect(t.OP, auth.accessToken.value, { tokenTypeHint: 'access_token' });
      s.check(`the access token is active, for ${info.sub}, scope "${info.scope}", client ${info.client_id}`, info.active === true && info.sub === 'alice' && info.client_id === 'client');
    });

    await t.step('introspection', async (s) => {
      const info = await t.relyingParty.introspect(t.OP, auth.refreshToken, { tokenTypeHint: 'refresh_token' });
      s.check(`the refresh token is active, for ${info.sub}, until ${new Date(info.exp * 1000).toISOString()}`, info.active === true && info.sub === 'alice');
    });

    await t.step('token_revocation', async (s) => {
      await t.relyingParty.revoke(t.OP, auth.refreshToken, { tokenTypeHint: 'refresh_token' });
      s.check('the OP answered 200: the refresh token is revoked (RFC 7009 §2.2)', s.responses().at(-1)?.status === 200);
    });

    await t.step('introspection', async (s) => {
      const info = await t.relyingParty.introspect(t.OP, auth.refreshToken, { tokenTypeHint: 'refresh_token' });
      s.check('the revoked refresh token is inactive: { active: false } and nothing else', info.active === false && Object.keys(info).length === 1);
    });

    await t.step('introspection', async (s) => {
      const info = await t.relyingParty.introspect(t.OP, auth.accessToken.value, { tokenTypeHint: 'access_token' });
      s.check('the access token of the same grant is inactive too (RFC 7009 §2.1: the grant is revoked)', info.active === false);
    });

    await t.step('refresh_token (revoked)', async (s) => {
      const err = await s.refused(t.relyingParty.refresh(auth), 'invalid_grant', 'the refresh grant with the revoked token');
      s.check(`the RelyingParty ends the login: ${err?.code}`, err?.code === 'refresh_failed');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
