#!/usr/bin/env node
// Device Authorization Grant, RFC 8628 (no IdPyOIDC demo: the seventeenth story).
//
// A device without a browser (a TV, a CLI) asks the OP for a device code and shows the user a
// short user code and where to enter it. Alice enters it on the OP's page from another device,
// signs in and consents, while the device polls the token endpoint until the OP answers tokens.
import { defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';
import { enterUserCode } from './lib/user-agent.mjs';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export const story = defineStory({
  name: 'oauth2-device',
  seed: '(none: RFC 8628)',
  title: 'Device authorization grant (RFC 8628)',
  shows: 'the user code and verification URI, a scripted user entering it on the OP\'s page, the device polling',

  // ================ Server side ===================================
  // op() options: features.deviceFlow (the /device/auth endpoint and the /device pages); the
  // device is a public client (no secret on a TV) allowed the device_code grant.
  server: () => ({
    features: { deviceFlow: true },
    ttl: { DeviceCode: 600 },
    clients: [{
      client_id: 'living-room-tv',
      client_name: 'Living-room TV',
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    }],
  }),

  // ================ Client side ===================================
  client: () => ({
    clientId: 'living-room-tv',
    tokenEndpointAuthMethod: 'none',
    scope: 'openid profile email',
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP has a device_authorization_endpoint (${metadata.device_authorization_endpoint})`, !!metadata.device_authorization_endpoint);
    });

    const device = await t.step('device_authorization', async (s) => {
      const started = await t.relyingParty.deviceAuthorization(t.OP, { scope: 'openid profile email' });
      s.result('relyingParty.deviceAuthorization()', {
        user_code: started.userCode, verification_uri: started.verificationUri, expires_in: started.expiresIn, interval: started.interval,
      });
      s.note(`The TV shows: "Go to ${started.verificationUri} and enter ${started.userCode}"`);
      s.check(`a user code to type (${started.userCode}) and a verification URI on the OP (${started.verificationUri})`,
        /^[A-Z]{4}-[A-Z]{4}$/.test(started.userCode) && started.verificationUri === `${t.issuer}/device`);
      s.check(`the device code lives ${started.expiresIn} s; poll every ${started.interval} s`, started.expiresIn > 0 && started.interval > 0);
      return started;
    });

    await t.step('device_access_token', async (s) => {
      s.note(`The device polls every ${device.interval} s while alice, on her phone, enters the code at the OP.`);
      const polling = device.poll({ signal: AbortSignal.timeout(60_000) });
      polling.catch(() => undefined);
      // alice takes her time: the device's first poll comes back authorization_pending
      const pollsSoFar = () => s.requests().filter((r) => r.form?.grant_type === DEVICE_CODE_GRANT);
      for (let waited = 0; !s.responses().some((r) => r.body?.error === 'authorization_pending') && waited < 20_000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      s.check(`the first poll: authorization_pending (the user has not approved yet; ${pollsSoFar().length} poll so far)`,
        s.responses().some((r) => r.status === 400 && r.body?.error === 'authorization_pending'));
      const agent = t.userAgent();
      const done = await enterUserCode(agent, device.verificationUri, device.userCode, { login: t.alice.username, password: t.alice.password });
      s.userAgent(agent);
      s.check(`alice's last page: "${done.title}"`, done.status === 200 && /signed in/i.test(done.title));
      const auth = await polling;
      tokenResponse(s, auth, 'device.poll()');
      s.check(`the device polled the token endpoint ${pollsSoFar().length} times with the device_code; the last answer: tokens`, pollsSoFar().length >= 2);
      s.rpVerified('device.poll()', 'the token response, the ID token (signature, iss, aud, exp) and userinfo\'s sub');
      await s.jwt('id_token', auth.idToken, { audience: 'living-room-tv' });
      s.check(`the TV is signed in as ${auth.user.sub} (${auth.user.email})`, auth.user.sub === 'alice');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
