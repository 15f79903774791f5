import debug from 'debug';
import express, { type NextFunction, type Request, type Response } from 'express';
import { RelyingParty, type NormalizedUser, type OidcSessionData, type ProviderConfig } from '@openid-express/rp';
import type { Authenticator, AuthenticatorMount } from './authenticator.js';

const log = debug('openid-express:op');

/** Options of the `upstream` authenticator. */
export interface UpstreamOptions {
  /** Authenticator id and the provider's name in the callback URL (letters, digits, `-`, `_`). */
  name: string;
  /** Heading on the login page (default "Sign in with <provider label>"). */
  label?: string;
  /** The other OP, as for `rp()`: `oidc({ issuer, clientId, clientSecret })`, `google({...})` ... */
  provider: ProviderConfig;
  /** The local account id of a user signed in upstream, or undefined to refuse them. */
  account(user: NormalizedUser): Promise<string | undefined> | string | undefined;
  /** `amr` of logins through this authenticator. Default ['fed']. */
  amr?: string[];
}

type Bag = Record<string, OidcSessionData | undefined>;

/** This authenticator's RP transactions, in `req.session`, apart from the app's own `rp()` data. */
function sessionData(req: Request, name: string): OidcSessionData {
  const session = req.session as unknown as Bag;
  const key = `openidExpressOpUpstream:${name}`;
  session[key] ??= {};
  return session[key];
}

function callbackParams(req: Request): URLSearchParams {
  if (req.method === 'POST') return new URLSearchParams(req.body as Record<string, string>);
  return new URL(req.originalUrl, 'http://callback').searchParams;
}

/**
 * Federation: users sign in at another OpenID Provider (through `@openid-express/rp`), and
 * `account()` maps them to a local account. Register `{issuer}/upstream/callback/{name}` as the
 * redirect URI at the other OP.
 *
 * @example
 * op({ issuer, accounts, authenticators: [password(), upstream({
 *   name: 'corp', provider: oidc({ issuer: 'https://corp.example.com', clientId: 'id', clientSecret: 's' }),
 *   account: async (user) => (await accounts.findByLogin(user.email ?? ''))?.id,
 * })] });
 */
export function upstream(options: UpstreamOptions): Authenticator {
  let relyingParty: RelyingParty | undefined;
  const { name } = options;

  async function callback(ctx: AuthenticatorMount, req: Request, res: Response) {
    const rp = relyingParty!;
    const params = callbackParams(req);
    const state = params.get('state');
    let transaction;
    try {
      transaction = rp.takeTransaction(sessionData(req, name), state, name);
    } catch {
      return ctx.complete(req, res, undefined, { ok: false }); // unknown, replayed or foreign state
    }
    const uid = transaction.returnTo;
    try {
      const auth = await rp.finalize(transaction, state!, params);
      const accountId = await options.account(auth.user);
      if (!accountId) log('upstream %s: no local account for the user', name);
      return await ctx.complete(req, res, uid, accountId ? { ok: true, accountId, amr: options.amr ?? ['fed'] } : { ok: false });
    } catch (err) {
      log('upstream %s refused: %s', name, (err as { code?: string }).code ?? 'error');
      return ctx.complete(req, res, uid, { ok: false });
    }
  }

  return {
    id: name,
    label: options.label ?? `Sign in with ${options.provider.label ?? name}`,
    submitLabel: 'Continue',
    fields: () => '',
    throttleKey: () => undefined,
    mount(ctx) {
      relyingParty = new RelyingParty({
        baseURL: new URL(ctx.issuer).origin, mountPath: `${ctx.mountPath}/upstream`, providers: { [name]: options.provider },
      });
      const path = `/upstream/callback/${name}`;
      // op()'s error page answers failures (a 503 while the store is down), never a stack trace
      const handle = (req: Request, res: Response, next: NextFunction) => void callback(ctx, req, res).catch(next);
      ctx.router.get(path, handle);
      ctx.router.post(path, express.urlencoded({ extended: false, limit: '64kb' }), handle);
    },
    async verify({ req, uid }) {
      if (!relyingParty) throw new Error(`upstream(${name}): not mounted by op()`);
      // the interaction uid rides in the RP transaction (`returnTo`), kept in this browser's session
      const { url, state, transaction } = await relyingParty.authorizationRequest(name, { returnTo: uid });
      relyingParty.saveTransaction(sessionData(req, name), state, transaction);
      return { ok: 'redirect', url: url.href };
    },
  };
}
