#!/usr/bin/env node
// OpenID Connect with DPoP, RFC 9449 (IdPyOIDC: demo/oidc_add_on_dpop.py).
//
// The OIDC code flow with a DPoP key per login: the token endpoint binds the access token to
// it (token_type DPoP, cnf.jkt in introspection), and the userinfo endpoint takes it only with a
// proof signed by the same key.
import { createHash } from 'node:crypto';
import { dpopThumbprint } from '@openid-express/rp';
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oidc-add-on-dpop',
  seed: 'oidc_add_on_dpop.py',
  title: 'OpenID Connect with DPoP',
  shows: 'a DPoP-bound access token (introspection: cnf.jkt) used at the userinfo endpoint with a proof',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: add_ons.dpop on the OIDC server. Ours: features.dPoP (on by default),
  // the client registered with dpop_bound_access_tokens.
  server: ({ redirectUri }) => ({
    features: { dPoP: true, introspection: true },
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
      dpop_bound_access_tokens: true,
    }],
  }),

  // ================ Client side ===================================
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid profile email',
    dpop: true, // ES256 proofs, a key per login
    fetchUserInfo: false, // userinfo is a step of its own below
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP accepts DPoP proofs (${metadata.dpop_signing_alg_values_supported?.join(', ')})`, metadata.dpop_signing_alg_values_supported?.includes('ES256'));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      await s.jwt('id_token', login.idToken, { audience: 'client' });
      const proof = s.requests().find((r) => r.form?.grant_type === 'authorization_code')?.jwts?.DPoP;
      s.check(`the token request carried a DPoP proof (${proof?.header.alg}, htu ${proof?.claims.htu})`, proof?.claims.htu === `${t.issuer}/token`);
      s.check(`token_type ${login.accessToken.tokenType}: the access token is bound to the login's key`, login.accessToken.tokenType.toLowerCase() === 'dpop');
      return login;
    });

    await t.step('introspection', async (s) => {
      const info = await t.relyingParty.introspect(t.OP, auth.accessToken.value, { tokenTypeHint: 'access_token' });
      const jkt = await dpopThumbprint(auth.dpop);
      s.check(`the access token is active, token_type ${info.token_type}`, info.active === true && info.token_type === 'DPoP');
      s.check(`cnf.jkt ${info.cnf?.jkt} is the thumbprint of the login's DPoP key`, info.cnf?.jkt === jkt);
    });

    await t.step('userinfo', async (s) => {
      const info = await t.relyingParty.userInfo(auth);
      s.rpVerified('relyingParty.userInfo()', 'the answer is JSON and its sub is the ID token\'s');
      const sent = s.requests().find((r) => r.url.endsWith('/me'));
      const ath = createHash('sha256').update(auth.accessToken.value).digest('base64url');
      s.check(`the request said "Authorization: DPoP" with a proof for GET ${sent?.jwts?.DPoP?.claims.htu}, ath = SHA-256(access token)`,
        sent?.headers?.authorization?.startsWith('DPoP ') && sent.jwts?.DPoP?.claims.htm === 'GET' && sent.jwts.DPoP.claims.ath === ath);
      s.check(`userinfo: sub ${info.sub}, email ${info.email}`, info.sub === 'alice' && info.email === t.alice.claims.email);
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
