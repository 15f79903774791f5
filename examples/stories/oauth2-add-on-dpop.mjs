#!/usr/bin/env node
// DPoP, RFC 9449 (IdPyOIDC: demo/oauth2_add_on_dpop.py).
//
// Sender-constrained access tokens: the client makes a key pair for the login and signs a proof
// (a `DPoP` header JWT) for each request. The OP binds the access token to that key (cnf.jkt),
// and the resource server takes the token only with a fresh proof by the same key; the same
// token sent as a plain Bearer token is refused.
import { dpopThumbprint } from '@openid-express/rp';
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { dpopResource } from './lib/resource-server.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-add-on-dpop',
  seed: 'oauth2_add_on_dpop.py',
  title: 'DPoP (RFC 9449)',
  shows: 'a DPoP-bound JWT access token (cnf.jkt) used at a resource server route that checks the proof',

  // The resource server: a route of the client's site (lib/resource-server.mjs).
  site: (app, t) => dpopResource(app, t, { path: '/api/resource', audience: `${t.site}/api` }),

  // ================ Server side ===================================
  // op() options. IdPyOIDC: add_ons.dpop { dpop_signing_alg_values_supported }. Ours: features.dPoP
  // is on by default (ES256, Ed25519); the client is registered with dpop_bound_access_tokens, so
  // the OP never gives it a plain Bearer token. The API is a resource (RFC 8707) with JWT tokens.
  server: ({ site, redirectUri }) => ({
    features: {
      dPoP: true,
      resourceIndicators: { resources: { [`${site}/api`]: { scope: 'read write', accessTokenFormat: 'jwt' } } },
    },
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
  // IdPyOIDC: add_ons.dpop { dpop_signing_alg_values_supported: ["ES256"] }. Ours: dpop on the provider entry.
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid read',
    dpop: { alg: 'ES256' },
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    const api = `${t.site}/api`;
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP accepts DPoP proofs signed with ${metadata.dpop_signing_alg_values_supported?.join(', ')}`, metadata.dpop_signing_alg_values_supported?.includes('ES256'));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s, { params: { resource: api } }));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      const proof = s.requests().find((r) => r.form?.grant_type === 'authorization_code')?.jwts?.DPoP;
      s.check(`the token request carried a DPoP proof (${proof?.header.typ}, ${proof?.header.alg}, htm ${proof?.claims.htm})`, proof?.header.typ === 'dpop+jwt' && proof.claims.htm === 'POST');
      s.check(`the OP answered token_type ${login.accessToken.tokenType}`, login.accessToken.tokenType.toLowerCase() === 'dpop');
      const claims = await s.jwt('access_token', login.accessToken.value, { audience: api, typ: 'at+jwt' });
      const jkt = await dpopThumbprint(login.dpop);
      s.check(`access_token: cnf.jkt ${claims.cnf?.jkt} is the thumbprint of the login's key`, claims.cnf?.jkt === jkt);
      return login;
    });

    await t.step('resource', async (s) => {
      s.note(`relyingParty.fetchResource(login, '${api}/resource') signs a fresh proof (htm, htu, ath) with the login's key.`);
      const res = await s.withGlobalFetch(() => t.relyingParty.fetchResource(auth, `${api}/resource`));
      const body = await res.json();
      s.check(`the resource server answered ${res.status}`, res.status === 200);
      for (const what of body.checked ?? []) s.check(`resource server: ${what}`, true);
      s.check(`the resource is alice's (sub ${body.sub})`, body.sub === 'alice');
    });

    await t.step('resource (the token as Bearer)', async (s) => {
      s.note('The same access token without a proof (someone who copied it): the resource server refuses it.');
      const copied = { accessToken: { value: auth.accessToken.value, tokenType: 'Bearer' } };
      const res = await s.withGlobalFetch(() => t.relyingParty.fetchResource(copied, `${api}/resource`));
      const body = await res.json();
      s.check(`refused: ${res.status} ${body.error} — ${body.error_description}`, res.status === 401 && body.error === 'invalid_token');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
