import { loginKey, type AccountStore } from '../accounts.js';
import { escapeHtml } from '../views/escape.js';
import type { Authenticator } from './authenticator.js';

/** Options of the `password` authenticator. */
export interface PasswordOptions {
  /** Heading on the login page (default "Sign in with your password"). */
  label?: string;
  /** Label of the login field (default "Username or email"). */
  loginLabel?: string;
}

const MAX_FIELD = 1024;

/**
 * The account whose login name (trimmed) and password these are, or undefined: the one check behind
 * the login form's `password()` and the password grant. Over-long fields are refused unhashed.
 * Throws when the store answers anything but an account id, undefined or false (a developer's error).
 *
 * @example
 * const accountId = await checkPassword(accounts, 'alice', 'wonderland');
 */
export async function checkPassword(accounts: AccountStore, loginName: string | undefined, pass: string | undefined): Promise<string | undefined> {
  const login = loginName?.trim();
  if (!login || !pass || login.length > MAX_FIELD || pass.length > MAX_FIELD) return undefined;
  const accountId: unknown = await accounts.verifyPassword(login, pass);
  // (false, as password checks often answer a wrong one, is taken as undefined: no account)
  if (accountId === undefined || accountId === null || accountId === false) return undefined;
  if (typeof accountId === 'string' && accountId) return accountId;
  // true, as password checks often answer a right one: a 500 that names the method, not
  // oidc-provider's "accountId must be a non-empty string"
  const what = typeof accountId === 'string' ? 'an empty string' : `${typeof accountId} ${String(accountId).slice(0, 40)}`;
  throw new Error(`accounts.verifyPassword() must return the account id (a string) or undefined; it returned ${what}`);
}

/**
 * Username (or email) and password, checked by the `accounts` store of `op()`. The default
 * authenticator when `authenticators` is not given.
 *
 * @example
 * op({ issuer, accounts, authenticators: [password({ loginLabel: 'Email' })] });
 */
export function password(options: PasswordOptions = {}): Authenticator {
  const loginLabel = options.loginLabel ?? 'Username or email';
  return {
    id: 'password',
    label: options.label ?? 'Sign in with your password',
    submitLabel: 'Sign in',
    fields({ loginHint, lastLogin, autofocus, errorId }) {
      const value = lastLogin ?? loginHint ?? '';
      const focusLogin = autofocus && !value;
      const focusPassword = autofocus && !!value;
      const invalid = errorId ? ` aria-invalid="true" aria-describedby="${escapeHtml(errorId)}"` : '';
      return `<label for="password-login">${escapeHtml(loginLabel)}</label>
<input id="password-login" name="login" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(value)}"${invalid}${focusLogin ? ' autofocus' : ''}>
<label for="password-password">Password</label>
<input id="password-password" name="password" type="password" autocomplete="current-password" required${invalid}${focusPassword ? ' autofocus' : ''}>`;
    },
    throttleKey: (body) => (body.login?.trim() ? loginKey(body.login.trim()) : undefined),
    async verify({ body, accounts }) {
      const accountId = await checkPassword(accounts, body.login, body.password);
      return accountId ? { ok: true, accountId, amr: ['pwd'] } : { ok: false };
    },
  };
}
