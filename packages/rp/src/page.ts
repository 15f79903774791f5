/**
 * The few pages `rp()` draws itself (errors, the logout confirmation, the form_post and fragment
 * hand-offs): one small default look, plain HTML and CSS, readable on a 360 px screen. Apps that
 * want their own pages pass `onError`.
 */
import { createHash } from 'node:crypto';
import type { RpError } from './errors.js';

/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The stylesheet of every page (inline: the pages' CSP allows `style-src 'unsafe-inline'` only for it). */
export const PAGE_STYLE =
  'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1.25rem;' +
  'line-height:1.5;color:#1d2130;background:#fff;overflow-wrap:anywhere}h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}' +
  'p,form{margin:0 0 1rem}a{color:#1d4ed8}small,.detail{color:#4b5162;font-size:.875rem}' +
  'button{font:inherit;padding:.5rem 1.25rem;border-radius:.375rem;border:1px solid #1d2130;background:#1d2130;color:#fff;cursor:pointer}' +
  'button:focus-visible,a:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}code{font-size:.875rem}';

/** The CSP source that allows exactly the shared style (for pages whose CSP is otherwise `default-src 'none'`). */
export const PAGE_STYLE_SRC = `'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`;

/**
 * The Content-Security-Policy of a page rp() draws: nothing loads or runs but the shared style and `script` (a
 * CSP source, for a page with one), no framing, and forms post only to this site unless `formAction` is false.
 */
export function pagePolicy(script?: string, formAction = true): string {
  return `default-src 'none'; ${script ? `script-src ${script}; ` : ''}style-src ${PAGE_STYLE_SRC}; `
    + `${formAction ? "form-action 'self'; " : ''}base-uri 'none'; frame-ancestors 'none'`;
}

/** A whole page: title, the shared style, and `body` (already escaped HTML, starting with its `<h1>`) as its main landmark. */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>${PAGE_STYLE}</style></head><body><main>${body}</main></body></html>`;
}

/** What a person should read for an error: a title and a sentence, by stable code (the technical message goes below). */
function wording(err: RpError): { title: string; message: string } {
  if (err.opError === 'access_denied') {
    return { title: 'Sign-in cancelled', message: 'You chose not to sign in or not to share your information, so you are not signed in. You can try again whenever you like.' };
  }
  switch (err.code) {
    case 'missing_state':
    case 'invalid_state':
    case 'transaction_expired':
      return { title: 'This sign-in has expired', message: 'The sign-in took too long, was already used, or was started in another browser or tab. Please start again.' };
    case 'op_unreachable':
    case 'op_unavailable':
    case 'store_unavailable':
      // a refusal that lasts until the site's operators change a setting (see RpError.lasting)
      if (err.lasting) {
        return err.loginUrl
          ? { title: 'Sign-in is unavailable', message: 'The site cannot complete the sign-in because of a problem on its side, which its operators have been told about. Please try again later.' }
          : { title: 'Unavailable', message: 'The site cannot do this right now because of a problem on its side, which its operators have been told about. Please try again later. If you were signed in, you still are.' };
      }
      return err.loginUrl
        ? { title: 'Sign-in is briefly unavailable', message: 'This usually passes by itself: sign in again in a few seconds. If you were signed in, you still are.' }
        // (not a sign-in: a sign-out, a refresh, a page of the app)
        : { title: 'Briefly unavailable', message: 'This usually passes by itself: try again in a few seconds. If you were signed in, you still are.' };
    case 'refresh_failed':
    case 'login_ended':
      return { title: 'Your sign-in has ended', message: 'Your sign-in provider no longer accepts this sign-in (it expired, or was ended there). Please sign in again.' };
    case 'cross_origin_request':
      return { title: 'Request refused', message: 'This request came from another site. Use the page of this site to do it.' };
    default:
      return err.status >= 500
        ? { title: 'Sign-in is unavailable', message: 'The site could not complete the sign-in because of a problem on its side.' }
        : { title: 'Sign-in did not complete', message: 'The sign-in could not be completed.' };
  }
}

/** The default HTML error page: plain words first, then the technical message and code for whoever fixes it. */
export function errorPage(err: RpError): string {
  const { title, message } = wording(err);
  // a failed callback: its answer is spent (or may be), a new login is the way forward
  const again = err.loginUrl ? `<p><a href="${escapeHtml(err.loginUrl)}">Sign in again</a></p>` : '';
  return page(title,
    `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${again}` +
    `<p class="detail">${escapeHtml(err.message)}</p><p class="detail">Error code: <code>${escapeHtml(err.code)}</code></p>` +
    `<p><a href="/">Back to the start page</a></p>`);
}
