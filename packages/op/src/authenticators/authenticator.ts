import type { Request } from 'express';
import type { AccountStore } from '../accounts.js';

/** What an authenticator's part of the login page is drawn from. */
export interface LoginFormContext {
  /** `login_hint` of the authorization request, when the client sent one. */
  loginHint?: string;
  /** The login name last tried with this authenticator in this interaction (its `throttleKey`), to refill the field. */
  lastLogin?: string;
  /** Whether the field the user should type into first belongs to this authenticator. */
  autofocus: boolean;
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
}

/** What an authenticator is given when its form is posted. */
export interface VerifyInput {
  /** The posted fields (strings only; arrays and missing fields arrive as undefined). */
  body: Record<string, string | undefined>;
  req: Request;
  accounts: AccountStore;
}

/**
 * A way to sign in, offered on the login page. Several can be offered side by side; each draws its
 * own fields inside its own form, and the OP adds the CSRF token, the interaction and the throttling.
 * Redirect-based authenticators (federation through `@openid-express/rp`, planned as `upstream`)
 * will add an optional `start(req, res)` hook; the form-post contract below stays as is.
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
  verify(input: VerifyInput): Promise<AuthenticationSuccess | AuthenticationFailure>;
}
