/**
 * `response_mode=form_post` callbacks are cross-site POSTs from the OP's page: browsers do not send
 * a `SameSite=Lax` session cookie with them (Chromium's default for cookies without SameSite). Such a
 * callback is answered with a same-origin page that posts the same fields again, now with the
 * session cookie, so the app never has to weaken its cookie settings.
 */
import { createHash, randomBytes } from 'node:crypto';
import createDebug from 'debug';
import type { Request, Response } from 'express';
import type { OidcSessionData } from './session.js';
import { hasPendingLogin } from './transactions.js';
import { escapeHtml, page, pagePolicy } from './page.js';

const debug = createDebug('openid-express:rp');

/** Marks the second, same-origin POST (at most one resubmission per callback). */
export const RESUBMIT_FIELD = 'oidc_resubmitted';

/**
 * True when a callback should be posted again from the app's own origin: its `state` matches no
 * pending login of this request's session (the cookie did not come), and it was not resubmitted yet.
 * A POST (form_post) always; a GET only when it is a browser's cross-site navigation (the OP's
 * redirect back), which a `SameSite=Strict` session cookie does not go with, while the same-origin
 * POST from the app's own page does. Elsewhere (an API client, a test) a GET is answered at once.
 *
 * @example
 * ```ts
 * if (needsSameOriginResubmit(req, params, req.session.oidc)) return resubmitSameOrigin(req, res, params);
 * ```
 */
export function needsSameOriginResubmit(req: Request, params: URLSearchParams, data: OidcSessionData | undefined): boolean {
  if (params.has(RESUBMIT_FIELD) || (req.method === 'GET' ? req.get('sec-fetch-site') !== 'cross-site' : req.method !== 'POST')) return false;
  const state = params.get('state');
  return !state || !hasPendingLogin(data, state);
}


/**
 * Answers with a page that posts `params` (+ {@link RESUBMIT_FIELD}) to the same URL, same-origin.
 * Nothing is written to the session, so no new session cookie replaces the one the browser holds.
 */
export function resubmitSameOrigin(req: Request, res: Response, params: URLSearchParams): void {
  // Leave the session alone: one made for this cookie-less request must not replace the browser's cookie.
  delete (req as { session?: unknown }).session;
  debug('%s: %s callback matched no pending login of this session; posting it again same-origin', req.path, req.method);
  const nonce = randomBytes(16).toString('base64');
  const inputs = [...params, [RESUBMIT_FIELD, '1']]
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  res
    .status(200)
    .set({
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-security-policy': pagePolicy(`'nonce-${nonce}'`),
    })
    .type('html')
    .send(page('Signing in…',
      `<h1>Signing in…</h1><form method="post" action="${escapeHtml(req.originalUrl.split('?')[0]!)}">${inputs}` +
        `<noscript><button type="submit">Continue signing in</button></noscript></form>` +
        `<script nonce="${nonce}">document.forms[0].submit()</script>`));
}

/** The one script of the fragment page (its hash is allowed by the page's CSP, nothing else runs). */
const FRAGMENT_SCRIPT =
  "var f=document.forms[0],p=new URLSearchParams(location.hash.slice(1));" +
  "if(p.has('state')){p.forEach(function(v,k){var i=document.createElement('input');i.type='hidden';i.name=k;i.value=v;f.appendChild(i)});" +
  "history.replaceState(null,'',location.pathname);f.submit()}else{document.getElementById('m').textContent='This sign-in response is empty or incomplete: please start again.'}";
const FRAGMENT_SCRIPT_HASH = createHash('sha256').update(FRAGMENT_SCRIPT).digest('base64');

/**
 * `response_mode=fragment`: the OP's answer is in the URL fragment, which browsers never send. This
 * page reads it and posts it (same-origin, so with the session cookie) to the same callback URL, then
 * clears the fragment from the address bar and history.
 */
export function postFragment(req: Request, res: Response): void {
  res
    .status(200)
    .set({
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-security-policy': pagePolicy(`'sha256-${FRAGMENT_SCRIPT_HASH}'`),
    })
    .type('html')
    .send(page('Signing in…',
      `<form method="post" action="${escapeHtml(req.originalUrl.split('?')[0])}"><input type="hidden" name="${RESUBMIT_FIELD}" value="1"></form>` +
        `<h1 id="m">Signing in…</h1><noscript><p>This sign-in needs JavaScript: the provider's answer is in this page's address, which only a script can read. Turn JavaScript on and sign in again.</p></noscript>` +
        `<script>${FRAGMENT_SCRIPT}</script>`));
}
