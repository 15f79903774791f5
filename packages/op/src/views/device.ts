import { clientLogo, escapeHtml, safeHref, isolate } from './escape.js';

/** What the device flow's "enter the code" view is drawn from. */
export interface DeviceInputViewProps {
  title: string;
  /** Where the form posts (the OP's `/device`). */
  action: string;
  /** Trusted HTML of the form's hidden fields (its CSRF token): put it inside the `<form>`. */
  fields: string;
  /** The code typed last, to refill the field after an error. */
  userCode?: string;
  /** Why the last attempt did not go through, in plain words (wrong or expired code, cancelled sign-in). */
  error?: string;
  /** Whether codes are digits only (a numeric keyboard on phones). */
  digits?: boolean;
}

/** What the device flow's "is this your device?" view is drawn from. */
export interface DeviceConfirmViewProps {
  title: string;
  /** The client (the device's app) asking. */
  clientName: string;
  clientUri?: string;
  logoUri?: string;
  /** The code as the device shows it. */
  userCode: string;
  /** Where the form posts (the OP's `/device`). */
  action: string;
  /**
   * Trusted HTML of the form's hidden fields (CSRF token and code): put it inside the `<form>`, with a
   * submit button `name="confirm" value="yes"` to go on and one `name="abort" value="yes"` to refuse.
   */
  fields: string;
}

/** What the device flow's last page is drawn from. */
export interface DeviceSuccessViewProps {
  title: string;
  /** The client (the device's app) now signed in, when known. */
  clientName?: string;
}

/**
 * The default "enter the code shown on your device" page.
 *
 * @example
 * op({ issuer, accounts, features: { deviceFlow: true }, views: { deviceInput: (p) => myCodePage(p) } });
 */
export function deviceInput(p: DeviceInputViewProps): string {
  const error = p.error ? `<p class="error" role="alert" id="device-error">${escapeHtml(p.error)}</p>\n` : '';
  const numeric = p.digits ? ' inputmode="numeric" pattern="[0-9]*"' : '';
  return `<h1>${escapeHtml(p.title)}</h1>
<p>Enter the code your device shows to sign it in.</p>
${error}<form method="post" action="${escapeHtml(p.action)}">
${p.fields}
<label for="user-code">Code</label>
<input id="user-code" name="user_code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus${numeric}${p.error ? ' aria-invalid="true" aria-describedby="device-error"' : ''} value="${escapeHtml(p.userCode ?? '')}">
<button type="submit">Continue</button>
</form>`;
}

/**
 * The default "is this your device?" page: the client and the code, then "Continue" or "Cancel".
 *
 * @example
 * op({ issuer, accounts, features: { deviceFlow: true }, views: { deviceConfirm: 'device-confirm' } }); // the app's engine
 */
export function deviceConfirm(p: DeviceConfirmViewProps): string {
  const href = safeHref(p.clientUri);
  const client = href ? `<a href="${escapeHtml(href)}">${isolate(p.clientName)}</a>` : isolate(p.clientName);
  return `${clientLogo(p.logoUri)}<h1>${escapeHtml(p.title)}</h1>
<p><strong>${client}</strong> on a device asks to sign in. Check that the device shows this code:</p>
<p class="account"><code>${escapeHtml(p.userCode)}</code></p>
<p class="muted">If you did not start this, or the code differs, cancel: nothing is shared.</p>
<form method="post" action="${escapeHtml(p.action)}">
${p.fields}
<button type="submit" name="confirm" value="yes">Continue</button>
<button type="submit" name="abort" value="yes" class="secondary">Cancel</button>
</form>`;
}

/**
 * The default page once the device is signed in.
 *
 * @example
 * op({ issuer, accounts, features: { deviceFlow: true }, views: { deviceSuccess: () => '<h1>Done: look at your TV</h1>' } });
 */
export function deviceSuccess(p: DeviceSuccessViewProps): string {
  const what = p.clientName ? `${isolate(p.clientName)} on your device` : 'Your device';
  return `<h1>${escapeHtml(p.title)}</h1>
<p>${what} is signed in. You can close this page and go back to the device.</p>`;
}
