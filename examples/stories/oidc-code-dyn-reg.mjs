#!/usr/bin/env node
// Dynamic client registration, then the code flow (IdPyOIDC: demo/oidc_code_dyn_reg.py).
//
// The client knows no OP and has no client_id: it finds alice's OP by WebFinger, reads its
// discovery document, registers itself (RFC 7591 / OIDC Registration) and logs alice in with
// the client_id and client_secret the OP just gave it.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oidc-code-dyn-reg',
  seed: 'oidc_code_dyn_reg.py',
  title: 'Dynamic registration + code flow',
  shows: 'WebFinger, discovery, client registration (RFC 7591), then a login with the registered client',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: the registration endpoint (Registration). Ours: features.registration
  // (open registration here; give { initialAccessToken } to require a token). No clients known.
  server: () => ({
    features: { registration: true },
    clients: [],
  }),

  // ================ Client side ===================================
  // No provider entry: the RelyingParty finds and registers OPs on the fly (IdPyOIDC: the
  // RPHandler's "" entry with dynamic registration). Loopback OPs need the development options.
  client: () => null,
  relyingParty: () => ({
    dynamic: {
      webfinger: true,
      registration: true,
      scope: 'openid profile email',
      clientMetadata: { client_name: 'Usage story RP' },
      allowPrivateNetwork: true, // the OP is on 127.0.0.1 (refused by default: SSRF guard)
      allowInsecureRequests: true, // and on http://
    },
  }),

  // ==== And now for the protocol exchange sequence. A dynamic OP's requests go through the
  // RelyingParty's SSRF-guarded fetch, which has no customFetch hook: the steps record the global fetch.
  async flow(t) {
    const identifier = `alice@${new URL(t.issuer).host}`;
    const name = await t.step('webfinger + provider_info + registration', async (s) => {
      s.note(`relyingParty.discoverProvider('${identifier}'): the user typed her identifier.`);
      const provider = await s.withGlobalFetch(() => t.relyingParty.discoverProvider(identifier));
      const webfinger = s.exchange((r) => r.url.includes('/.well-known/webfinger')).response;
      const discovery = s.exchange((r) => r.url.endsWith('/.well-known/openid-configuration')).response;
      const registration = s.exchange((r) => r.method === 'POST' && r.url === discovery?.body?.registration_endpoint).response;
      s.check(`WebFinger named the issuer ${webfinger?.body?.links?.[0]?.href}`, webfinger?.body?.links?.[0]?.href === t.issuer);
      s.check(`the discovery document's issuer is that issuer and it has a registration_endpoint`, discovery?.body?.issuer === t.issuer && !!discovery.body.registration_endpoint);
      const registered = registration?.body ?? {};
      s.check(`the OP registered the client: ${registration?.status}, client_id ${registered.client_id}, a secret (${registered.client_secret})`,
        registration?.status === 201 && typeof registered.client_id === 'string' && registered.client_secret === '••••');
      s.check(`registered redirect_uris: ${registered.redirect_uris} (the RelyingParty's callback for "${provider}")`,
        registered.redirect_uris?.[0] === t.relyingParty.callbackUrl(provider));
      s.result('relyingParty.discoverProvider()', { provider, client_id: t.relyingParty.provider(provider).clientId, token_endpoint_auth_method: t.relyingParty.provider(provider).tokenEndpointAuthMethod });
      return provider;
    });

    const { request, response } = await t.step('authorization', async (s) =>
      s.withGlobalFetch(() => authorize(t, s, { provider: name })));

    await t.step('accesstoken + userinfo', async (s) => {
      const auth = await s.withGlobalFetch(() => t.relyingParty.finalize(request.transaction, request.state, response.params));
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud = the registered client_id, exp, nonce), userinfo\'s sub');
      await s.jwt('id_token', auth.idToken, { audience: t.relyingParty.provider(name).clientId });
      s.check(`the user: ${auth.user.sub}, ${auth.user.email} (from userinfo)`, auth.user.sub === 'alice' && auth.user.email === t.alice.claims.email);
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
