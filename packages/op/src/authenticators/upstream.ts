import { createHash, randomBytes } from 'node:crypto';
import debug from 'debug';
import express, { type CookieOptions, type NextFunction, type Request, type Response } from 'express';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { RelyingParty, type NormalizedUser, type OidcSessionData, type ProviderConfig, type Transaction } from '@openid-express/rp';
import { appCall } from '../bounded-store.js';
import { StoreUnavailableError } from '../errors.js';
import { cookieOf } from '../request-cookie.js';
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

/**
 * This authenticator's RP transactions in `req.session`: read where no record is found (a sign-in an
 * instance of an earlier release started), and written too, for one release, so an instance of an
 * earlier release can finish a sign-in this one started during a rolling upgrade.
 */
function sessionData(req: Request, name: string, create: true): OidcSessionData;
function sessionData(req: Request, name: string, create?: boolean): OidcSessionData | undefined;
function sessionData(req: Request, name: string, create?: boolean): OidcSessionData | undefined {
  const session = req.session as unknown as Bag | undefined;
  const key = `openidExpressOpUpstream:${name}`;
  if (create && session) session[key] ??= {};
  return session?.[key];
}

/** The store's model name of the sign-ins started at another OP, one record each (apart from oidc-provider's). */
export const UPSTREAM_TRANSACTION_MODEL = 'OpUpstreamTransaction';

/**
 * One sign-in started at another OP: its RP transaction, and the browser it belongs to; once its
 * callback took it, only `taken` (kept as long as the sign-in could have lived: a callback that
 * found no record would look for a copy in the session, which a planted session cookie carries).
 */
type StartedSignIn = {
  /** SHA-256 of the value of the cookie this sign-in set in the browser that started it. */
  browser: string;
  /** The RP transaction, as `RelyingParty.saveTransaction` keeps it. */
  data: OidcSessionData;
  taken?: undefined;
} | { taken: true };

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

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
  /** The sign-ins started at the other OP, in op()'s store (set in `mount`). */
  let records: Adapter;
  /**
   * The cookie binding each sign-in to the browser that started it (set in `mount`): sent only to the
   * callback; on https `__Secure-` (no page over http can set one) and SameSite=None, so it also comes
   * with a `form_post` answer (a cross-site POST); Lax on http, where browsers refuse None.
   */
  let cookie: { prefix: string; options: CookieOptions } = { prefix: '', options: {} };
  const cookieName = (id: string) => `${cookie.prefix}op_upstream_${id.slice(0, 16)}`;
  const { name } = options;
  const provider = options.provider.label ?? name;

  async function callback(ctx: AuthenticatorMount, req: Request, res: Response) {
    const rp = relyingParty!;
    const params = callbackParams(req);
    const state = params.get('state');
    const id = state ? sha256(`${name}:${state}`) : undefined;
    const found = id ? await records.find(id) as StartedSignIn | undefined : undefined;
    // a sign-in another browser started is none of this one's (its answer planted here signs no one in)
    const proof = id && cookieOf(req, cookieName(id));
    const ours = found && !found.taken && proof && found.browser === sha256(proof) ? found.data : undefined;
    const data = ours ?? (found ? undefined : sessionData(req, name));
    let uid;
    try {
      // read, not taken yet: a copy of this callback (it arrived twice) leaves it, following the first copy
      uid = rp.takeTransaction(structuredClone(data), state, name).returnTo;
    } catch {
      return ctx.complete(req, res, undefined, { ok: false }); // unknown, replayed or foreign state
    }
    let taken = false;
    try {
      return await ctx.completeOnce(req, res, { key: `upstream:${name}:${state}`, uid, provider }, () => {
        taken = true;
        if (proof) res.clearCookie(cookieName(id!), cookie.options); // its work is done, whatever the answer
        const transaction = rp.takeTransaction(data, state, name);
        // and its copy in the session, which an instance of the earlier release would still take on a replay
        if (ours) {
          try {
            rp.takeTransaction(sessionData(req, name), state, name);
          } catch { /* not there: lost to another tab's save, or the session is another */ }
        }
        return redeem(ctx, transaction, state!, params);
      });
    } finally {
      // once answered (a copy meanwhile follows this one: the claim, not the record, keeps the code redeemed
      // once); not when the claim itself failed (a 503 whose reload may still finish the sign-in)
      if (ours && taken) {
        await records.upsert(id!, { taken: true } as AdapterPayload, rp.options.transactionTtl)
          .catch((err: unknown) => log('upstream %s: a finished sign-in\'s record not marked taken: %s', name, (err as Error)?.message));
      }
    }
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
      records = ctx.store.adapterFor(UPSTREAM_TRANSACTION_MODEL);
      const path = `/upstream/callback/${name}`;
      const secure = new URL(ctx.issuer).protocol === 'https:';
      cookie = {
        prefix: secure ? '__Secure-' : '',
        options: { path: `${ctx.mountPath}${path}`, httpOnly: true, secure, sameSite: secure ? 'none' : 'lax' },
      };
      // op()'s error page answers failures (a 503 while the store is down), never a stack trace
      const handle = (req: Request, res: Response, next: NextFunction) => void callback(ctx, req, res).catch(next);
      ctx.router.get(path, handle);
      ctx.router.post(path, express.urlencoded({ extended: false, limit: '64kb' }), handle);
    },
    async verify({ req, res, uid }) {
      if (!relyingParty) throw new Error(`upstream(${name}): not mounted by op()`);
      // the interaction uid rides in the RP transaction (`returnTo`), kept in the sign-in's record
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
      // one record per sign-in, in op()'s store (shared by its instances), bound to this browser by a cookie of
      // its own: in the session, two tabs choosing this at once each saved the session as they read it, and
      // the last save dropped the other's sign-in (that tab came back to "This sign-in has expired")
      const data: OidcSessionData = {};
      relyingParty.saveTransaction(data, state, transaction);
      const id = sha256(`${name}:${state}`);
      const proof = randomBytes(24).toString('base64url');
      const ttl = relyingParty.options.transactionTtl;
      await records.upsert(id, { browser: sha256(proof), data } as unknown as AdapterPayload, ttl);
      res.cookie(cookieName(id), proof, { ...cookie.options, maxAge: ttl * 1000 });
      // TODO(next release): not in the session any more, once no instance of an earlier release reads it there
      relyingParty.saveTransaction(sessionData(req, name, true), state, transaction);
      return { ok: 'redirect', url: url.href };
    },
  };
}
