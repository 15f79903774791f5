import debug from 'debug';
import express, { type NextFunction, type Request, type Response } from 'express';
import { RelyingParty, type NormalizedUser, type OidcSessionData, type ProviderConfig, type Transaction } from '@openid-express/rp';
import { appCall } from '../bounded-store.js';
import { StoreUnavailableError } from '../errors.js';
import type { AuthenticationFailure, AuthenticationSuccess, Authenticator, AuthenticatorMount } from './authenticator.js';

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
/**
 * Whether a failure of the other OP passes by itself (unreachable, 5xx or 429 — the RP's errors with
 * `Retry-After` —, or its own `server_error` / `temporarily_unavailable`): not the user's doing.
 */
function passing(err: unknown): boolean {
  const { retryAfter, opError } = err as { retryAfter?: number; opError?: string };
  return retryAfter !== undefined || opError === 'server_error' || opError === 'temporarily_unavailable';
}

export function upstream(options: UpstreamOptions): Authenticator {
  let relyingParty: RelyingParty | undefined;
  const { name } = options;
  const provider = options.provider.label ?? name;

  async function callback(ctx: AuthenticatorMount, req: Request, res: Response) {
    const rp = relyingParty!;
    const params = callbackParams(req);
    const state = params.get('state');
    const data = sessionData(req, name);
    let uid;
    try {
      // read, not taken yet: a copy of this callback (it arrived twice) leaves it, following the first copy
      uid = rp.takeTransaction(structuredClone(data), state, name).returnTo;
    } catch {
      return ctx.complete(req, res, undefined, { ok: false }); // unknown, replayed or foreign state
    }
    return ctx.completeOnce(req, res, { key: `upstream:${name}:${state}`, uid, provider },
      () => redeem(ctx, rp.takeTransaction(data, state, name), state!, params));
  }

  /** The other OP's answer redeemed, and its user mapped to a local account: the sign-in's result. */
  async function redeem(
    ctx: AuthenticatorMount, transaction: Transaction, state: string, params: URLSearchParams,
  ): Promise<AuthenticationSuccess | AuthenticationFailure> {
    let auth;
    try {
      auth = await relyingParty!.finalize(transaction, state, params);
    } catch (err) {
      const failure = err as { code?: string; opError?: string };
      log('upstream %s refused: %s%s', name, failure.code ?? 'error', failure.opError ? ` (${failure.opError})` : '');
      // the user said no there; the other OP down or failing (5xx, 429, its own server_error): not a wrong guess
      if (failure.opError === 'access_denied') return { ok: false, reason: 'cancelled', provider };
      if (passing(err)) return { ok: false, reason: 'unavailable', provider };
      return { ok: false, provider };
    }
    // the app's own directory: one that never answers is a 503 (storeTimeout), one that fails is named in the log
    let accountId: string | undefined;
    try {
      accountId = await appCall(() => options.account(auth.user), ctx.storeTimeout,
        `upstream(${name}): account() did not answer within ${ctx.storeTimeout} ms (storeTimeout)`, `upstream(${name}): its account()`);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      // the other OP's answer is spent: a 503 whose way back starts this sign-in again there, not "try again" here
      log('%s', err.message);
      return { ok: false, reason: 'unavailable', provider };
    }
    if (!accountId) log('upstream %s: no local account for the user', name);
    return accountId ? { ok: true, accountId, amr: options.amr ?? ['fed'] } : { ok: false, provider };
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
      let request;
      try {
        request = await relyingParty.authorizationRequest(name, { returnTo: uid });
      } catch (err) {
        // its discovery down, 5xx or not JSON: a 503 naming it, not a 500 (nor a failed attempt)
        const code = (err as { code?: string }).code;
        if (!passing(err) && code !== 'discovery_failed') throw err;
        // (a discovery document that is not one may also be a wrong issuer: said where operators look)
        if (code === 'discovery_failed') console.warn(`op(): upstream(${name}): ${(err as Error).message}`);
        else log('upstream %s unavailable: %s', name, (err as Error).message);
        return { ok: false, reason: 'unavailable', provider };
      }
      const { url, state, transaction } = request;
      relyingParty.saveTransaction(sessionData(req, name), state, transaction);
      return { ok: 'redirect', url: url.href };
    },
  };
}
