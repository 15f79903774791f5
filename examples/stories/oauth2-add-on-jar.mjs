#!/usr/bin/env node
// JWT-Secured Authorization Request, RFC 9101 (IdPyOIDC: demo/oauth2_add_on_jar.py).
//
// The authorization request's parameters travel as a request object: a JWT signed with the
// client's private key (`request=` by value). The OP verifies the signature with the public key
// registered for the client and uses only the parameters inside; the client is registered with
// require_signed_request_object, so an unsigned request would be refused. The same key signs
// the client's assertions at the token endpoint (private_key_jwt): this client has no secret.
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

// The client's key pair (IdPyOIDC: the client's key_conf); the OP knows the public half.
const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
const CLIENT_KEY = { ...(await exportJWK(privateKey)), kid: 'client-sig-1', alg: 'RS256', use: 'sig' };
const CLIENT_PUBLIC_KEY = { ...(await exportJWK(publicKey)), kid: 'client-sig-1', alg: 'RS256', use: 'sig' };

export const story = defineStory({
  name: 'oauth2-add-on-jar',
  seed: 'oauth2_add_on_jar.py',
  title: 'JAR: signed request object (RFC 9101)',
  shows: 'the authorization request as a request object signed with the client\'s key (RS256), decoded; private_key_jwt at the token endpoint',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: the authorization endpoint's request_object support. Ours:
  // features.requestObjects (on by default); the client's public key and its signing alg are
  // registered, and request objects are required of it.
  server: ({ redirectUri }) => ({
    features: { requestObjects: true },
    scopes: ['foobar'],
    clients: [{
      client_id: 'client',
      token_endpoint_auth_method: 'private_key_jwt', // the same key signs the client assertions
      token_endpoint_auth_signing_alg: 'RS256',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
      jwks: { keys: [CLIENT_PUBLIC_KEY] },
      request_object_signing_alg: 'RS256',
      require_signed_request_object: true,
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: add_ons.jar { request_type: 'request_parameter', request_object_signing_alg: 'RS256' }.
  client: () => ({
    clientId: 'client',
    tokenEndpointAuthMethod: 'private_key_jwt',
    scope: 'openid foobar',
    requestObject: { by: 'value', signingAlg: 'RS256' },
    fetchUserInfo: false,
  }),
  relyingParty: () => ({ keys: [CLIENT_KEY] }), // the RelyingParty's private keys (IdPyOIDC: rp_keys)

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP accepts request objects signed with RS256 (${metadata.request_object_signing_alg_values_supported?.length} algs)`,
        metadata.request_object_signing_alg_values_supported?.includes('RS256'));
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      const jwt = result.request.url.searchParams.get('request');
      const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet({ keys: [CLIENT_PUBLIC_KEY] }), { issuer: 'client', audience: t.issuer });
      s.check(`request object: ${protectedHeader.alg} signature by the client's key kid=${protectedHeader.kid}, typ ${protectedHeader.typ}`, protectedHeader.kid === CLIENT_KEY.kid);
      s.check(`request object: iss ${payload.iss} is the client_id, aud ${payload.aud} is the OP`, payload.iss === 'client' && payload.aud === t.issuer);
      s.check('request object: carries redirect_uri, state, nonce and the code_challenge', ['redirect_uri', 'state', 'nonce', 'code_challenge'].every((k) => typeof payload[k] === 'string'));
      s.check('outside the request object only client_id, response_type, scope travel (OIDC Core 6.1)',
        [...result.request.url.searchParams.keys()].sort().join(' ') === 'client_id request response_type scope');
      s.check('the OP took the parameters from the request object: the state in it came back', result.response.params.get('state') === payload.state);
      return result;
    });

    await t.step('accesstoken', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      const assertion = s.requests().find((r) => r.form?.grant_type === 'authorization_code')?.jwts?.client_assertion;
      s.check(`the client authenticated with private_key_jwt: an assertion signed ${assertion?.header.alg} by kid=${assertion?.header.kid}, sub ${assertion?.claims.sub}`,
        assertion?.header.kid === CLIENT_KEY.kid && assertion.claims.sub === 'client' && assertion.claims.iss === 'client');
      await s.jwt('id_token', auth.idToken, { audience: 'client' });
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
