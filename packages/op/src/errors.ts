import { onceEvery } from './hourly-warning.js';

/**
 * A start-up error: `op()` options that cannot work. `option` names the offending option and the
 * message says how to fix it.
 *
 * @example
 * try { op({ issuer: 'not a url', accounts }) } catch (e) {
 *   if (e instanceof OpConfigError) console.error(e.option, e.message);
 * }
 */
export class OpConfigError extends Error {
  readonly code = 'op_config_invalid';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`op(): ${option}: ${message}`);
    this.name = 'OpConfigError';
  }
}

/** Stable codes of the errors the OP's own screens answer with (shown on the error page, logged). */
export type OpErrorCode =
  | 'session_missing'
  | 'mount_mismatch'
  | 'interaction_expired'
  | 'cookies_missing'
  | 'csrf_invalid'
  | 'login_failed'
  | 'login_cancelled'
  | 'upstream_unavailable'
  | 'login_throttled'
  | 'authenticator_unknown'
  | 'wrong_prompt'
  | 'store_unavailable';

/**
 * An error answered to the browser with a status, a stable `code` and a message safe to show.
 *
 * @example
 * throw new OpError('csrf_invalid', 403, 'This form has expired. Nothing was changed.');
 */
export class OpError extends Error {
  constructor(
    readonly code: OpErrorCode,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'OpError';
  }
}

/**
 * The shared store (Redis) did not answer in time or could not be reached. Answered as
 * 503 `store_unavailable` with `Retry-After`; the same request succeeds once the store is back.
 *
 * @example
 * if (err instanceof StoreUnavailableError) res.status(503).set('retry-after', String(err.retryAfter));
 */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  readonly status = 503;
  /** Seconds a client should wait before trying again (the `Retry-After` header). */
  readonly retryAfter = 5;
  /**
   * True when the failure lasts until someone changes a setting (Redis refusing the OP's password or
   * ACL user, or full: `OOM`): still a 503 with `Retry-After`, but its page and JSON do not tell the user it passes by itself.
   */
  readonly lasting?: boolean;
  /** True when the store answered, and another live request holds what this one needs (a consume lease): a 503 to retry, not an outage for the log. */
  readonly busy?: boolean;
  constructor(message: string, options?: { cause?: unknown; lasting?: boolean; busy?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreUnavailableError';
    if (options?.lasting) this.lasting = true;
    if (options?.busy) this.busy = true;
  }
}

/**
 * A resume of a sign-in (`/auth/:uid`) found its one-time claim held by another request for longer than
 * it waits (request-scope.ts): that request may still complete the sign-in. Answered as 503
 * `resume_in_progress` with `Retry-After`, never as the final "expired" page.
 */
export class ResumeInProgressError extends Error {
  readonly code = 'resume_in_progress';
  readonly status = 503;
  constructor(message: string) {
    super(message);
    this.name = 'ResumeInProgressError';
  }
}

/** True when `err` is a ResumeInProgressError, by its stable code (safe across module copies). */
export const isResumeInProgress = (err: unknown): boolean => (err as { code?: unknown } | undefined)?.code === 'resume_in_progress';

/** True when `err` is (or wraps) a StoreUnavailableError that lasts until someone changes a setting (`lasting`). */
export const isLastingRefusal = (err: unknown): boolean => storeFailureIn(err, true) !== undefined;

/**
 * The StoreUnavailableError `err` is or wraps (by its stable code, safe across module copies), the first
 * among its causes; with `lasting`, the first that lasts until someone changes a setting. Undefined: none.
 */
export function storeFailureIn(err: unknown, lasting = false): { message: string; lasting?: boolean; busy?: boolean } | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = e as { code?: unknown; message: string; lasting?: boolean; busy?: boolean };
    if (c.code === 'store_unavailable' && (!lasting || c.lasting === true)) return c;
  }
  return undefined;
}

/**
 * Rethrows a failure of the app's own code (its account store, an authenticator) with `what` in its
 * message and the original as `cause`, so the log says where it came from. A store outage
 * (`store_unavailable`, a 503), an `OpError` the app throws on purpose ("this account is suspended")
 * and oidc-provider's own errors (`expose`) pass unchanged.
 *
 * @example
 * await accounts.findById(id).catch(namedFailure('accounts.findById()'));
 */
export function namedFailure(what: string): (err: unknown) => never {
  return (err) => {
    const e = err as { code?: unknown; expose?: unknown } | undefined;
    if (err instanceof OpError || e?.code === 'store_unavailable' || e?.expose === true) throw err;
    throw new Error(`${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  };
}

/** Whether a store failure (by its message without ids or numbers) may be said now: once a minute each. */
const saidThisMinute = onceEvery(60_000);

/**
 * Says a store failure where operators look, without DEBUG: `console.warn`, at most once a minute per
 * failure (its message names the store, the call, what it answered and what to check; messages that
 * differ only by an id or a number are one failure), so a stall
 * shows in the log without a line per request. Visitors never see it: op()'s 503 only says to try
 * again (`STORE_UNAVAILABLE`, `STORE_REFUSED` in error-page.ts).
 *
 * @example
 * if (isStoreUnavailable(err)) { warnStoreFailure(err); return sendStoreUnavailable(req, res, views, err); }
 */
export function warnStoreFailure(err: unknown): void {
  const failure = storeFailureIn(err);
  if (!failure || failure.busy) return; // (Redis answered: nothing for its operators)
  const message = withoutSecrets(String(failure.message));
  // one failure whatever id or number its text quotes (a session id, "connection 12"): not a line per request
  if (!saidThisMinute(message.replace(/\d+/g, '#'))) return;
  console.warn(`[@openid-express/op] ${message}. Requests that need the store answer 503 store_unavailable `
    + `${failure.lasting ? 'until it is fixed' : 'while it lasts'} (said at most once a minute).`);
}

/** A run that may be an id, a token or base64 (a JWT with its dots, a signed session id with its `+` `/` `=`). */
const LONG_RUN = /[A-Za-z0-9_\-.~%+/=]{16,}/g;
/** A part of such a run that is a word (`upsert`, `ECONNREFUSED`, `AuthorizationCode`) or a number, not random. */
const WORD = /^(?:[a-z]+|[A-Z]+|\d+|[a-z]*(?:[A-Z][a-z]{2,})+)$/;

/**
 * `text` (a store's error, for the log) on one line and at most 500 characters, without a URL's
 * credentials (`redis://user:p@ss/word@host`: everything up to the last `@`) or anything that may be an
 * id or a token: a run of 16 or more letters, digits and `_-.~%+/=` is `…` unless it is made of words
 * and numbers (`Interaction.upsert`, `maxmemory-policy`, `ERR_SOCKET_CLOSED`), wherever it stands
 * (`sess:<id>`, `"<id>"`, `Key (sid)=(<id>)`).
 */
export function withoutSecrets(text: string): string {
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .replace(/\/\/[^\s"'<>]*@/g, '//…@')
    .replace(LONG_RUN, (run) => (run.split(/[-_.~%+/=]+/).every((part) => part === '' || WORD.test(part)) ? run : '…'));
  return flat.length > 500 ? `${flat.slice(0, 500)}…` : flat;
}
