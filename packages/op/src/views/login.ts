import { clientLogo, escapeHtml, safeHref, isolate } from './escape.js';

/** One authenticator's form on the login page. */
export interface LoginFormProps {
  id: string;
  label: string;
  /** Trusted HTML of its fields, from the authenticator. */
  fields: string;
  submitLabel: string;
}

/** What the login and consent screens show of the client asking. */
export interface ClientScreenProps {
  title: string;
  clientName: string;
  clientUri?: string;
  /** The client's `logo_uri`, shown when it is http(s). */
  logoUri?: string;
  /** The languages the client asked for (`ui_locales`), most preferred first; the default views are English only. */
  uiLocales?: string[];
  /** How the client asked to show the page (`display`: page, popup, touch, wap). */
  display?: string;
}

/** What the login view is drawn from. */
export interface LoginViewProps extends ClientScreenProps {
  /** Where every login form posts (with a hidden `authenticator` field). */
  action: string;
  /** Where the "Cancel" form posts (denies the request: `access_denied` at the client). */
  abortAction: string;
  csrf: string;
  authenticators: LoginFormProps[];
  /** The one generic failure message, when the last attempt failed. */
  error?: string;
}

/**
 * The default login view: one form per authenticator, each with the CSRF token, then "Cancel".
 *
 * @example
 * op({ issuer, accounts, views: { login: (props) => myLoginHtml(props) } });
 */
export function login(p: LoginViewProps): string {
  const href = safeHref(p.clientUri);
  const client = href ? `<a href="${escapeHtml(href)}">${isolate(p.clientName)}</a>` : isolate(p.clientName);
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(p.csrf)}">`;
  const forms = p.authenticators.map((a) => `<section aria-labelledby="auth-${escapeHtml(a.id)}">
<h2 id="auth-${escapeHtml(a.id)}">${escapeHtml(a.label)}</h2>
<form method="post" action="${escapeHtml(p.action)}" autocomplete="on">
${csrf}
<input type="hidden" name="authenticator" value="${escapeHtml(a.id)}">
${a.fields}
<button type="submit">${escapeHtml(a.submitLabel)}</button>
</form>
</section>`);
  const error = p.error ? `<p class="error" role="alert" id="login-error">${escapeHtml(p.error)}</p>` : '';
  return `${clientLogo(p.logoUri)}<h1>${escapeHtml(p.title)}</h1>
<p class="muted">to continue to ${client}</p>
${error}
${forms.join('\n')}
<form method="post" action="${escapeHtml(p.abortAction)}">
${csrf}
<button type="submit" class="secondary">Cancel</button>
</form>`;
}
