import express from 'express';
import { memoryAdapter } from '@openid-express/op';
import { aliceTokens, client, insecure, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

describe('an app that parses bodies itself before op()', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { features: { clientCredentials: true, registration: true } }, {
      beforeOp: (app) => {
        app.use(express.json());
        app.use(express.urlencoded({ extended: true }));
      },
    });
  });
  afterAll(() => f.op.close());

  test('still signs alice in through the forms and exchanges and refreshes her tokens', async () => {
    const tokens = await aliceTokens(f, f.web, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(tokens.claims()!.sub).toBe('alice');
    const refreshed = await client.refreshTokenGrant(f.web, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));
  });

  test('still takes JSON at the registration endpoint and forms at the token endpoint', async () => {
    const registered = await client.dynamicClientRegistration(new URL(f.op.issuer),
      { redirect_uris: [`${f.op.origin}/cb`], grant_types: ['client_credentials'], response_types: [] }, undefined, insecure);
    const tokens = await client.clientCredentialsGrant(registered, {});
    expect(tokens.access_token).toEqual(expect.any(String));
  });
});

describe('trustProxy', () => {
  const interactionCookie = async (f: FlowFixture) => {
    const auth = await f.authorization();
    const res = await fetch(auth.url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    return res.headers.getSetCookie().find((c) => c.startsWith('_interaction='))!;
  };

  test('on: X-Forwarded-Proto https from the proxy makes the OP cookies Secure', async () => {
    const f = await startFlowFixture(memoryAdapter(), { trustProxy: true });
    try {
      expect(await interactionCookie(f)).toMatch(/;\s*secure/i);
    } finally {
      await f.op.close();
    }
  });

  test('off (default): the header is ignored', async () => {
    const f = await startFlowFixture(memoryAdapter());
    try {
      expect(await interactionCookie(f)).not.toMatch(/;\s*secure/i);
    } finally {
      await f.op.close();
    }
  });
});
