#!/usr/bin/env node
// Token Exchange, RFC 8693 (IdPyOIDC: demo/oauth2_token_exchange.py).
//
// The client holds alice's access token for one API and trades it for a token for another
// (audience "backend"), with fewer scopes. The OP asks its token exchange policy hook first; a
// request the policy refuses ends in access_denied.
import { ACCESS_TOKEN_TYPE } from '@openid-express/rp';
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

const API = 'https://example.org/appl';
const BACKEND = 'https://backend.example.org';
const VAULT = 'https://vault.example.org';

export const story = defineStory({
  name: 'oauth2-token-exchange',
  seed: 'oauth2_token_exchange.py',
  title: 'Token exchange (RFC 8693)',
  shows: 'alice\'s JWT for one API exchanged for one for "backend" (aud, act, fewer scopes) after the OP\'s policy hook; a refused exchange',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: usage_rules.access_token.supports_minting ["access_token"] and the
  // token endpoint's token exchange handler. Ours: features.tokenExchange with a policy (who may
  // exchange what) over features.resourceIndicators (the APIs tokens may be for).
  server: ({ redirectUri, note }) => ({
    features: {
      resourceIndicators: {
        resources: {
          [API]: { scope: 'read write' },
          [BACKEND]: { scope: 'read write', audience: 'backend', claimsByScope: { read: ['email'] } },
          [VAULT]: { scope: 'read' },
        },
      },
      tokenExchange: {
        // the policy hook: anything but true is access_denied
        policy: ({ client, subject, resource, scope }) => {
          const allowed = client.clientId === 'client' && subject.sub === 'alice' && resource !== VAULT;
          note(`policy({ client: ${client.clientId}, subject: ${subject.sub} (token for ${subject.audience}), resource: ${resource}, scope: ${scope.join(' ')} }) → ${allowed}`);
          return allowed;
        },
      },
    },
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: the token_exchange service (TokenExchange). Ours: relyingParty.tokenExchange().
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid read write',
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP offers the token exchange grant', metadata.grant_types_supported?.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s, { params: { resource: API } }));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      await s.jwt('access_token', login.accessToken.value, { audience: API, typ: 'at+jwt' });
      return login;
    });

    await t.step('token_exchange', async (s) => {
      const exchanged = await t.relyingParty.tokenExchange(t.OP, { subjectToken: auth.accessToken.value, audience: 'backend', scope: 'read' });
      s.result('relyingParty.tokenExchange()', {
        access_token: exchanged.accessToken.value, issued_token_type: exchanged.issuedTokenType, token_type: exchanged.accessToken.tokenType, scope: exchanged.accessToken.scope,
      });
      s.rpVerified('relyingParty.tokenExchange()', 'the token response (HTTP 200, JSON, access_token, issued_token_type)');
      s.check(`issued_token_type is ${exchanged.issuedTokenType}`, exchanged.issuedTokenType === ACCESS_TOKEN_TYPE);
      const claims = await s.jwt('access_token', exchanged.accessToken.value, { audience: 'backend', typ: 'at+jwt' });
      s.check(`same subject (sub ${claims.sub}), scope narrowed to "${claims.scope}"`, claims.sub === 'alice' && claims.scope === 'read');
      s.check(`act names the client acting for alice: ${JSON.stringify(claims.act)}`, claims.act?.sub === 'client');
      s.check(`backend's claims for scope read: email ${claims.email}`, claims.email === t.alice.claims.email);
    });

    await t.step('token_exchange (refused by the policy)', async (s) => {
      s.note(`The same token for ${VAULT}: the OP's policy says no.`);
      await s.refused(t.relyingParty.tokenExchange(t.OP, { subjectToken: auth.accessToken.value, resource: VAULT }), 'access_denied', `the exchange for ${VAULT}`);
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
