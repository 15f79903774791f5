/**
 * A REAL oidc-provider v9 on loopback for tests, with a test-only interaction (no HTML): the
 * "browser" of a test posts to `/interaction/:uid/login` (or `/abort`) and the fixture calls
 * `provider.interactionFinished()`; a real browser gets a two-button page at `/interaction/:uid`. Consent is granted automatically (first-party style
 * `loadExistingGrant`).
 *
 * API:
 * - `startOp({ clients, accounts?, ttl?, features?, config? })` → `TestOp` (listening, port 0).
 * - `op.issuer`; `op.provider` (the current oidc-provider instance); `op.counts.jwks` (JWKS
 *   downloads), `op.counts.discovery`, `op.counts.userinfo` (requests to the userinfo endpoint) and
 *   `op.counts.grants[grant_type]` (successful token grants).
 * - `op.browser()` → `OpBrowser` with its own OP cookie jar: `authorize(url, { account, deny })`
 *   follows the OP's redirects, logs in as `account` (default 'alice') or denies, and returns the
 *   first URL outside the OP (normally the RP callback with code and state; not fetched);
 *   `formPost(url, opts)` the same for response_mode=form_post: the OP's form (action, fields; not posted);
 *   `endSession(url)` confirms RP-initiated logout and returns where the OP sends the browser.
 * - `op.authorize(url, opts)`: the same with a fresh browser.
 * - `op.rotateKeys()`: the OP signs with a new key (new `kid`; `{ sameKid: true }`: the old one's) from now on, old key removed.
 * - `op.signingKey`: the current private JWK (to forge tokens "from the OP" in tests).
 * - `op.close()`.
 *
 * The real file lives under packages/rp/test/support (where oidc-provider resolves);
 * test/support/oidc-provider.ts re-exports it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { privateJwk } from '../../../../test/support/private-jwk.js';

export interface TestOpOptions {
  /** oidc-provider client metadata (client_id, client_secret, redirect_uris, ...). */
  clients: ClientMetadata[];
  /** accountId → claims. Default: alice and bob. */
  accounts?: Record<string, Record<string, unknown>>;
  /** oidc-provider `ttl` (seconds per model). */
  ttl?: Configuration['ttl'];
  /** oidc-provider `features`, merged over the fixture's (backchannelLogout and rpInitiatedLogout on). */
  features?: Configuration['features'];
  /** Any other raw oidc-provider configuration, merged last. */
  config?: Configuration;
}

export const DEFAULT_ACCOUNTS: Record<string, Record<string, unknown>> = {
  alice: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true, groups: ['staff', 'admin'] },
  bob: { name: 'Bob Builder', email: 'bob@example.org', email_verified: false, groups: ['staff'] },
};

function signingKey(): Record<string, unknown> {
  return { ...privateJwk(), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

/** A minimal cookie jar (name → value; the OP sets its cookies on its own host only). */
class Jar {
  private readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, ...rest] = pair.split('=');
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired) this.cookies.delete(name.trim());
      else this.cookies.set(name.trim(), rest.join('='));
    }
  }
}

/** The auto-submitting form of an OP form_post page (action and hidden fields). */
function formOf(html: string): { action: URL; fields: Record<string, string> } | undefined {
  const unescape = (v: string): string => v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const action = /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(html)?.[1];
  if (!action) return undefined;
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[unescape(m[1])] = unescape(m[2]);
  return { action: new URL(unescape(action)), fields };
}

/** A browser at the OP: cookies and redirects, nothing else. */
export class OpBrowser {
  private readonly jar = new Jar();
  constructor(private readonly issuer: string) {}

  private async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('cookie', this.jar.header());
    const send = () => fetch(url, { ...init, headers, redirect: 'manual' });
    // a kept-alive connection that the server closed as this request went out (a CI's loaded machine
    // once: "fetch failed", ECONNRESET): a browser sends an idempotent request again, so does this one
    const response = await send().catch((err: { cause?: { code?: string } }) => {
      if ((init.method ?? 'GET') === 'GET' && ['ECONNRESET', 'UND_ERR_SOCKET'].includes(err.cause?.code ?? '')) return send();
      throw err;
    });
    this.jar.take(response);
    return response;
  }

  /** Follows redirects from `url` while they stay at the OP; handles the login interaction. */
  async authorize(url: string | URL, opts: { account?: string; deny?: boolean } = {}): Promise<URL> {
    const end = await this.walk(url, opts);
    if (!(end instanceof URL)) throw new Error(`the OP answered with a form_post page to ${end.action.pathname}, use formPost()`);
    return end;
  }

  /** Like `authorize` for `response_mode=form_post`: the OP's auto-submitting form (action and fields, not posted). */
  async formPost(url: string | URL, opts: { account?: string; deny?: boolean } = {}): Promise<{ action: URL; fields: Record<string, string> }> {
    const end = await this.walk(url, opts);
    if (end instanceof URL) throw new Error(`the OP redirected to ${end.pathname} instead of posting a form`);
    return end;
  }

  private async walk(url: string | URL, opts: { account?: string; deny?: boolean }): Promise<URL | { action: URL; fields: Record<string, string> }> {
    let next = new URL(url);
    for (let hop = 0; hop < 20; hop++) {
      if (next.origin !== new URL(this.issuer).origin) return next;
      const interaction = /^\/interaction\/([^/]+)$/.exec(next.pathname);
      const response = interaction
        ? await this.request(`${next.href}/${opts.deny ? 'abort' : 'login'}`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ account: opts.account ?? 'alice' }),
          })
        : await this.request(next.href);
      const location = response.headers.get('location');
      if (!location) {
        const html = await response.text();
        const form = response.status === 200 || response.status === 400 ? formOf(html) : undefined; // an error is posted with 400
        if (form) return form;
        throw new Error(`the OP answered ${response.status} at ${next.pathname}: ${html.slice(0, 300)}`);
      }
      next = new URL(location, next);
    }
    throw new Error('too many redirects at the OP');
  }

  /** Opens the OP's end-session URL, confirms the logout form, returns where the OP redirects. */
  async endSession(url: string | URL): Promise<URL> {
    const page = await this.request(new URL(url).href);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!xsrf || !action) throw new Error(`no logout form at the OP (HTTP ${page.status})`);
    const response = await this.request(new URL(action, this.issuer).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    const location = response.headers.get('location');
    if (!location) throw new Error(`the OP answered ${response.status} to the logout confirmation`);
    return new URL(location, this.issuer);
  }
}

export interface TestOp {
  issuer: string;
  provider: Provider;
  counts: { jwks: number; discovery: number; userinfo: number; grants: Record<string, number> };
  browser(): OpBrowser;
  authorize(url: string | URL, opts?: { account?: string; deny?: boolean }): Promise<URL>;
  rotateKeys(options?: { sameKid?: boolean }): void;
  signingKey: Record<string, unknown>;
  close(): Promise<void>;
}

function configuration(options: TestOpOptions, key: Record<string, unknown>): Configuration {
  const accounts = options.accounts ?? DEFAULT_ACCOUNTS;
  return {
    clients: options.clients,
    jwks: { keys: [key as never] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    findAccount: (_ctx, id) => {
      const claims = Object.hasOwn(accounts, id) ? accounts[id] : undefined;
      return claims && { accountId: id, claims: () => ({ sub: id, ...claims }) };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // first-party style: every requested scope is granted without a consent screen
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const grant = new oidc.provider.Grant({ clientId: oidc.client!.clientId, accountId: oidc.session!.accountId! });
      grant.addOIDCScope([...(oidc.requestParamScopes ?? [])].join(' ') || 'openid');
      // response_type=id_token asks for the scope's claims in the ID token itself: grant those too
      grant.addOIDCClaims([...(oidc.requestParamClaims ?? [])]);
      // and the scopes of a resource the request names (RFC 8707), when resource indicators are on
      for (const [resource, server] of Object.entries((oidc as { resourceServers?: Record<string, { scope?: string }> }).resourceServers ?? {})) {
        if (server.scope) grant.addResourceScope(resource, server.scope);
      }
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600, ...options.ttl },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      ...options.features,
    },
    ...options.config,
  };
}

/** Starts a real oidc-provider on 127.0.0.1 (port 0). */
export async function startOp(options: TestOpOptions): Promise<TestOp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const counts = { jwks: 0, discovery: 0, userinfo: 0, grants: {} as Record<string, number> };
  const build = (kid?: unknown): Provider => {
    op.signingKey = { ...signingKey(), ...(kid ? { kid } : {}) };
    const provider = new Provider(issuer, configuration(options, op.signingKey));
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const type = String(ctx.oidc.params?.grant_type);
      counts.grants[type] = (counts.grants[type] ?? 0) + 1;
    });
    return provider;
  };
  const op = { issuer, counts } as TestOp;
  op.provider = build();

  const app = express();
  app.use((req, _res, next) => {
    if (req.path === '/jwks') counts.jwks += 1;
    if (req.path === '/.well-known/openid-configuration') counts.discovery += 1;
    if (req.path === '/me') counts.userinfo += 1;
    next();
  });
  const form = express.urlencoded({ extended: false });
  // a tiny page for real browsers (Chromium tests); OpBrowser posts to the same routes directly
  app.get('/interaction/:uid', (req, res) => {
    const uid = encodeURIComponent(req.params.uid);
    res.type('html').send(
      `<!doctype html><title>Test OP</title><form method="post" action="/interaction/${uid}/login">` +
        `<input name="account" value="alice"><button id="sign-in" type="submit">Sign in</button></form>` +
        `<form method="post" action="/interaction/${uid}/abort"><button id="cancel" type="submit">Cancel</button></form>`,
    );
  });
  app.post('/interaction/:uid/login', form, async (req, res, next) => {
    try {
      const details = await op.provider.interactionDetails(req, res);
      if (details.prompt.name === 'consent') {
        // oidc-provider always asks native clients (e.g. implicit over loopback http) for consent: grant what they asked
        const grant = new op.provider.Grant({ clientId: String(details.params.client_id), accountId: details.session!.accountId });
        grant.addOIDCScope(String(details.params.scope ?? 'openid'));
        const claims = details.prompt.details.missingOIDCClaims;
        if (Array.isArray(claims)) grant.addOIDCClaims(claims as string[]);
        await op.provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
        return;
      }
      await op.provider.interactionFinished(req, res, { login: { accountId: String(req.body.account) } }, { mergeWithLastSubmission: false });
    } catch (err) {
      next(err);
    }
  });
  app.post('/interaction/:uid/abort', form, async (req, res, next) => {
    try {
      const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
      await op.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    } catch (err) {
      next(err);
    }
  });
  let handler = op.provider.callback();
  app.use((req, res) => handler(req, res));
  server.on('request', app);

  op.browser = () => new OpBrowser(issuer);
  op.authorize = (url, opts) => new OpBrowser(issuer).authorize(url, opts);
  op.rotateKeys = ({ sameKid = false } = {}) => {
    op.provider = build(sameKid ? op.signingKey.kid : undefined);
    handler = op.provider.callback();
  };
  op.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return op;
}
