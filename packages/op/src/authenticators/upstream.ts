import { createHash } from 'node:crypto';
import debug from 'debug';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { RelyingParty, type NormalizedUser, type OidcSessionData, type ProviderConfig, type Transaction } from '@openid-express/rp';
import { appCall } from '../bounded-store.js';
import { browserId, knownBrowserId } from '../browser-id.js';
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

/**
 * This authenticator's RP transactions in `req.session`, where an instance of 0.x before this
 * release kept them (a sign-in it started, finished by this one during a rolling upgrade): read only.
 */
function sessionData(req: Request, name: string): OidcSessionData | undefined {
  return (req.session as unknown as Bag | undefined)?.[`openidExpressOpUpstream:${name}`];
}

/** The store's model name of the sign-ins started at another OP, one record each (apart from oidc-provider's). */
export const UPSTREAM_TRANSACTION_MODEL = 'OpUpstreamTransaction';

/** One sign-in started at another OP: its RP transaction, and the browser it belongs to. */
interface StartedSignIn {
  /** The id of the browser that started it (browser-id.ts). */
  browser: string;
  /** The RP transaction, as `RelyingParty.saveTransaction` keeps it. */
  data: OidcSessionData;
}

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
  const { name } = options;
  const provider = options.provider.label ?? name;

  async function callback(ctx: AuthenticatorMount, req: Request, res: Response) {
    const rp = relyingParty!;
    const params = callbackParams(req);
    const state = params.get('state');
    const id = state ? sha256(`${name}:${state}`) : undefined;
    const found = id ? await records.find(id) as StartedSignIn | undefined : undefined;
    // a sign-in another browser started is none of this one's (its answer planted here signs no one in)
    const ours = found && found.browser === knownBrowserId(req) ? found.data : undefined;
    const data = ours ?? (found ? undefined : sessionData(req, name));
    let uid;
    try {
      // read, not taken yet: a copy of this callback (it arrived twice) leaves it, following the first copy
      uid = rp.takeTransaction(structuredClone(data), state, name).returnTo;
    } catch {
      return ctx.complete(req, res, undefined, { ok: false }); // unknown, replayed or foreign state
    }
    try {
      return await ctx.completeOnce(req, res, { key: `upstream:${name}:${state}`, uid, provider },
        () => redeem(ctx, rp.takeTransaction(data, state, name), state!, params));
    } finally {
      // once answered (a copy meanwhile follows this one: the claim, not the record, keeps the code redeemed once)
      if (ours) await records.destroy(id!).catch((err: unknown) => log('upstream %s: a finished sign-in\'s record not removed: %s', name, (err as Error)?.message));
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
      // one record per sign-in, in op()'s store (shared by its instances), bound to this browser: in the
      // session itself, two tabs choosing this at once each saved the session as they read it, and the
      // last save dropped the other's sign-in (that tab came back to "This sign-in has expired")
      const data: OidcSessionData = {};
      relyingParty.saveTransaction(data, state, transaction);
      const record: StartedSignIn = { browser: browserId(req), data };
      await records.upsert(sha256(`${name}:${state}`), record as unknown as AdapterPayload, relyingParty.options.transactionTtl);
      return { ok: 'redirect', url: url.href };
    },
  };
}
