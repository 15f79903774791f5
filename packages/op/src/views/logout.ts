import { escapeHtml, pageHref, isolate } from './escape.js';

/** What the logout confirmation view is drawn from. */
export interface LogoutViewProps {
  title: string;
  /** The client that asked for the logout, when known. */
  clientName?: string;
  /** Trusted HTML of the (empty, hidden-fields-only) form `op.logoutForm` the buttons submit. */
  form: string;
}

/** What the "you are signed out" view is drawn from. */
export interface LogoutSuccessViewProps {
  title: string;
  clientName?: string;
  /**
   * The way onward: the client's registered `post_logout_redirect_uri` (or its `client_uri`) when the
   * client is known, else the OP's `homeUri`.
   */
  backUrl?: string;
  /** The text of that link ("Back to <client>", "Continue"). */
  backLabel?: string;
}

/**
 * The default RP-initiated logout confirmation: "Yes, sign me out" posts `logout=yes`, the other
 * button ends only the client's session at the OP.
 *
 * @example
 * op({ issuer, accounts, views: { logout: (p) => `${p.form}<button form="op.logoutForm" name="logout" value="yes">Out</button>` } });
 */
export function logout(p: LogoutViewProps): string {
  const from = p.clientName ? ` from ${isolate(p.clientName)} and` : '';
  return `<h1>${escapeHtml(p.title)}</h1>
<p>Do you want to sign out${from} from this identity provider?</p>
${p.form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`;
}

/**
 * The default page after a logout without a `post_logout_redirect_uri`, with a link onward.
 *
 * @example
 * op({ issuer, accounts, views: { logoutSuccess: () => '<h1>Bye</h1>' } });
 */
export function logoutSuccess(p: LogoutSuccessViewProps): string {
  const from = p.clientName ? ` from ${isolate(p.clientName)}` : '';
  const back = pageHref(p.backUrl);
  return `<h1>${escapeHtml(p.title)}</h1>
<p>You have signed out${from}.</p>
${back ? `<p><a class="button" href="${escapeHtml(back)}">${escapeHtml(p.backLabel ?? 'Continue')}</a></p>` : '<p>You can close this page.</p>'}`;
}
