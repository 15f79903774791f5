#!/usr/bin/env node
// Pushed Authorization Requests, RFC 9126 (IdPyOIDC: demo/oauth2_add_on_par.py).
//
// The client POSTs the authorization request's parameters to the OP's PAR endpoint, with its
// client authentication, and gets a request_uri; the browser carries only client_id and that
// request_uri. The client is registered with require_pushed_authorization_requests.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-add-on-par',
  seed: 'oauth2_add_on_par.py',
  title: 'PAR: pushed authorization request (RFC 9126)',
  shows: 'the authorization request POSTed to the PAR endpoint (client authentication), the browser carrying only the request_uri',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: add_ons.pushed_authorization { body_format: urlencoded }. Ours:
  // features.pushedAuthorizationRequests (on by default); this client must use it.
  server: ({ redirectUri }) => ({
    features: { pushedAuthorizationRequests: true },
    scopes: ['foobar'],
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
      require_pushed_authorization_requests: true,
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: add_ons.pushed_authorization on the client. Ours: pushedAuthorizationRequests on the provider entry.
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid foobar',
    pushedAuthorizationRequests: true,
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP has a pushed_authorization_request_endpoint (${metadata.pushed_authorization_request_endpoint})`, !!metadata.pushed_authorization_request_endpoint);
    });

    const { request, response } = await t.step('authorization', async (s) => {
      s.note('relyingParty.authorizationRequest() pushes the parameters first (the POST below), then sends the browser with the request_uri.');
      const result = await authorize(t, s);
      const pushed = s.requests()[0];
      s.check(`the parameters were pushed to ${pushed?.url} with client authentication (${pushed?.auth?.method})`, pushed?.method === 'POST' && !!pushed.auth);
      s.check('the pushed request carried redirect_uri, state, nonce, code_challenge', ['redirect_uri', 'state', 'nonce', 'code_challenge'].every((k) => k in (pushed?.form ?? {})));
      const pushedAnswer = s.responses()[0];
      s.check(`the OP answered 201 with a request_uri (${pushedAnswer?.body?.request_uri}) valid ${pushedAnswer?.body?.expires_in} s`, pushedAnswer?.status === 201 && pushedAnswer.body.request_uri?.startsWith('urn:ietf:params:oauth:request_uri:'));
      s.check('the browser carried only client_id and request_uri', [...result.request.url.searchParams.keys()].sort().join(' ') === 'client_id request_uri');
      return result;
    });

    await t.step('accesstoken', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      await s.jwt('id_token', auth.idToken, { audience: 'client' });
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
