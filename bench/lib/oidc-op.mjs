// A real oidc-provider v9 on loopback for the RP benchmarks (the ideas of
// packages/rp/test/support/oidc-provider.ts in plain JS): a programmatic login interaction
// (POST /interaction/:uid/login) and first-party consent, so a browser with an OP session is
// sent straight back to the client.
import { signingKey } from './signing-key.mjs';
import { createServer } from 'node:http';
import express from 'express';
import Provider from 'oidc-provider';

const ACCOUNTS = {
  alice: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true },
};

// oidc-provider's default adapter is an LRU of 1000 records: a benchmark run outgrows it and the
// OP would forget its sessions, so this one keeps everything (a run is bounded anyway).
class MapAdapter {
  static records = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload) {
    MapAdapter.records.set(this.key(id), payload);
    if (payload.uid) MapAdapter.records.set(`uid:${payload.uid}`, this.key(id));
  }

  async find(id) {
    return MapAdapter.records.get(this.key(id));
  }

  async findByUid(uid) {
    return MapAdapter.records.get(MapAdapter.records.get(`uid:${uid}`));
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const payload = MapAdapter.records.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MapAdapter.records.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, payload] of MapAdapter.records) if (payload?.grantId === grantId) MapAdapter.records.delete(key);
  }
}

function configuration(clients) {
  return {
    adapter: MapAdapter,
    clients,
    jwks: { keys: [signingKey()] },
    cookies: { keys: ['bench-cookie-key-0123456789'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: (_ctx, id) => Object.hasOwn(ACCOUNTS, id) && { accountId: id, claims: () => ({ sub: id, ...ACCOUNTS[id] }) },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // first-party style: every requested scope is granted without a consent screen
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope([...(ctx.oidc.requestParamScopes ?? [])].join(' ') || 'openid');
      await grant.save();
      return grant;
    },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true }, revocation: { enabled: true } },
    // OP_ID_TOKEN_CLAIMS=1: the ID token carries the claims of the granted scopes (userinfo then adds nothing)
    ...(process.env.OP_ID_TOKEN_CLAIMS === '1' ? { conformIdTokenClaims: false } : {}),
  };
}

/** Starts the OP on 127.0.0.1 (port 0) with `clients`; resolves with its issuer. */
export async function startOidcOp(clients) {
  const server = createServer();
  // under callgrind (MEASURE=instructions) an app takes seconds between two requests to the OP: a connection
  // the OP closed after Node's 5 s idle limit met the app's next request, and the login failed (op_unreachable)
  if (process.env.MEASURE === 'instructions') server.keepAliveTimeout = 120_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration(clients));
  const app = express();
  app.post('/interaction/:uid/login', express.urlencoded({ extended: false }), async (req, res, next) => {
    try {
      await provider.interactionDetails(req, res);
      await provider.interactionFinished(req, res, { login: { accountId: String(req.body.account) } }, { mergeWithLastSubmission: false });
    } catch (err) {
      next(err);
    }
  });
  app.use(provider.callback());
  server.on('request', app);
  return { issuer, server };
}
