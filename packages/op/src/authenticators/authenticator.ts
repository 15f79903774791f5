import type { Request, Response, Router } from 'express';
import type { AccountStore } from '../accounts.js';
import type { OpStore } from '../adapters/types.js';

/** What an authenticator's part of the login page is drawn from. */
export interface LoginFormContext {
  /** `login_hint` of the authorization request, when the client sent one. */
  loginHint?: string;
  /** The login name last tried with this authenticator in this interaction (its `throttleKey`), to refill the field. */
  lastLogin?: string;
  /** Whether the field the user should type into first belongs to this authenticator. */
  autofocus: boolean;
  /**
   * The id of the page's error message, when this authenticator's last try failed: its fields point at it
   * (`aria-describedby`) and say they are invalid (`aria-invalid`), so a screen reader reads the error
   * with the field that has the focus (WCAG 3.3.1).
   */
  errorId?: string;
}

/** A successful authentication: the account and how it was authenticated. */
export interface AuthenticationSuccess {
  ok: true;
  accountId: string;
  /** Authentication Methods References (RFC 8176), e.g. ['pwd']. */
  amr: string[];
  /** Authentication Context Class Reference, when the authenticator asserts one. */
  acr?: string;
}

/** A failed authentication. The user only ever sees one generic message. */
export interface AuthenticationFailure {
  ok: false;
  /**
   * Why, for `complete()` (an authenticator that went on elsewhere): `'cancelled'`, the user stopped at
   * the other provider; `'unavailable'`, it could not be reached or answered 5xx (a 503 with
   * `Retry-After`). Neither is counted as a failed attempt, and the page says which it was. Default:
   * a refused sign-in, counted by the throttle.
   */
  reason?: 'cancelled' | 'unavailable' | undefined;
  /** What the page calls the other provider ("Corp"); default "the other provider". */
  provider?: string | undefined;
}

/** Authentication continues elsewhere (federation): the browser is sent to `url`. */
export interface AuthenticationRedirect {
  ok: 'redirect';
  url: string;
}

/** What `op()` gives an authenticator that needs routes of its own (a callback from another OP). */
export interface AuthenticatorMount {
  issuer: string;
  /** Where op() is mounted ('' at the root). */
  mountPath: string;
  /** A router inside op(), after express-session and before oidc-provider. */
  router: Router;
  /**
   * Ends the login step of interaction `uid` (from the session, never from the URL): success resumes
   * the authorization (303), failure shows the error page with a way back to the login page.
   * `uid` undefined (nothing pending in this session) shows the expired-interaction page.
   */
  complete(req: Request, res: Response, uid: string | undefined, result: AuthenticationSuccess | AuthenticationFailure): Promise<void>;
  /**
   * `complete()` for a callback that may arrive more than once (a reload while it is being answered, a
   * load balancer sending it again, to any instance): the first request that brings `once.key` (the
   * callback's `state`, claimed in op()'s store) runs `outcome` and completes with it; a copy waits
   * for it (up to 10 s, then 503 with `Retry-After`) and answers as it ended — the sign-in's way on, or
   * the same failure page — without running `outcome` (the other OP's code is redeemed once) and
   * without counting a failed attempt. `once.uid`: the interaction the callback belongs to.
   */
  completeOnce(
    req: Request, res: Response, once: { key: string; uid: string; provider?: string | undefined },
    outcome: () => Promise<AuthenticationSuccess | AuthenticationFailure>,
  ): Promise<void>;
  /** Milliseconds each call of the app's own code may take (op()'s `storeTimeout`): past it, a 503. */
  storeTimeout: number;
  /**
   * op()'s `adapter` store, shared by its instances. Keep what a sign-in in progress needs here, one
   * record per sign-in (`store.adapterFor('MyModel')`), not in `req.session`: express-session saves a
   * session whole, so two tabs writing it at once keep only the last one's write. `upstream` binds
   * each record to the browser with a cookie of its own (set through `verify`'s `res`).
   */
  store: OpStore;
}

/** What an authenticator is given when its form is posted. */
export interface VerifyInput {
  /** The interaction being answered (keep it with the sign-in's record when leaving the OP). */
  uid: string;
  /** The posted fields (strings only; arrays and missing fields arrive as undefined). */
  body: Record<string, string | undefined>;
  req: Request;
  /** For headers of the answer, e.g. a cookie binding a sign-in elsewhere to this browser; op() sends the answer itself. */
  res: Response;
  accounts: AccountStore;
}

/**
 * A way to sign in, offered on the login page. Several can be offered side by side; each draws its
 * own fields inside its own form, and the OP adds the CSRF token, the interaction and the throttling.
 * Redirect-based ones (federation: `upstream`) answer `verify` with `{ ok: 'redirect', url }` and
 * come back through a route they add in `mount`, ending with `complete()`.
 *
 * @example
 * const pin: Authenticator = {
 *   id: 'pin', label: 'PIN',
 *   fields: () => '<label for="pin">PIN</label><input id="pin" name="pin" inputmode="numeric">',
 *   throttleKey: (body) => body.pin_user,
 *   async verify({ body }) { return body.pin === '1234' ? { ok: true, accountId: 'alice', amr: ['pin'] } : { ok: false }; },
 * };
 */
export interface Authenticator {
  /** Stable id (letters, digits, `-`, `_`), posted with the form to pick this authenticator. */
  readonly id: string;
  /** Human name, the heading of its section on the login page. */
  readonly label: string;
  /** HTML of its form fields (without `<form>`, CSRF or submit button). Escape what you interpolate. */
  fields(ctx: LoginFormContext): string;
  /** Text of its submit button (default "Sign in"). */
  readonly submitLabel?: string;
  /** The login name to count failures against (per-account throttling), from the posted fields. */
  throttleKey(body: Record<string, string | undefined>): string | undefined;
  /** Checks the posted fields. */
  verify(input: VerifyInput): Promise<AuthenticationSuccess | AuthenticationFailure | AuthenticationRedirect>;
  /** Called once by op() for authenticators that need routes (see `upstream`). */
  mount?(ctx: AuthenticatorMount): void;
}
