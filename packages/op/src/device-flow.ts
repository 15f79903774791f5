import debug from 'debug';
import type { Request, RequestHandler } from 'express';
import type { Configuration, KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { OpStore } from './adapters/types.js';
import { PAGE_HEADERS, sendRefusal } from './error-page.js';
import { RESUME_CLAIMED, RESUME_CLAIM_SECONDS, takeResumeClaim, type ResumeClaim } from './request-scope.js';
import { escapeHtml } from './views/escape.js';
import { defaultsOf, renderPage, type BrandedViews, type ViewProps, type Views } from './views/render.js';

const log = debug('openid-express:op');

type DeviceView = 'deviceInput' | 'deviceConfirm' | 'deviceSuccess';

/** Why a code was not taken, in plain words, by oidc-provider's error name. */
const MESSAGES: Record<string, string> = {
  NoCodeError: 'Enter the code your device shows.',
  NotFoundError: 'That code is not right. Check the code on your device and try again.',
  ExpiredError: 'That code has expired. Start again on your device to get a new one.',
  AlreadyUsedError: 'That code was already used. Start again on your device to get a new one.',
  AbortedError: 'The sign-in was cancelled: the device was not signed in.',
};
const OTHER = 'The sign-in could not be completed. Start again on your device.';
/** A form whose CSRF token no longer matches (posted again after a failure, or from an old tab): the code itself may still be good. */
const FORM_EXPIRED = 'This page has expired. Enter the code your device shows again.';

function messageOf(err: Error): string {
  if (err.name === 'InvalidRequest' && (err as { error_description?: unknown }).error_description === 'xsrf token invalid') return FORM_EXPIRED;
  return MESSAGES[err.name] ?? OTHER;
}

/** The hidden inputs of a device form: escaped, whatever their values. */
function hidden(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('\n');
}

/** The device form's CSRF token, which oidc-provider keeps in its session state. */
function xsrfOf(ctx: KoaContextWithOIDC): string {
  const state = ctx.oidc.session?.state as { secret?: unknown } | undefined;
  return typeof state?.secret === 'string' ? state.secret : '';
}

/** Draws a device view in the OP's layout with the page headers; an app view that fails falls back to the default. */
async function page<K extends DeviceView>(ctx: KoaContextWithOIDC, views: BrandedViews, name: K, props: ViewProps[K]): Promise<void> {
  const req = ctx.req as unknown as Request;
  ctx.type = 'html';
  ctx.set(PAGE_HEADERS);
  ctx.body = await renderPage(req, views, name, props).catch(() => renderPage(req, defaultsOf(views), name, props));
}

/**
 * oidc-provider's `features.deviceFlow` (RFC 8628) drawn with the OP's views: `deviceInput` (type the
 * code, and again after a wrong, expired or cancelled one), `deviceConfirm` (the client and the code,
 * Continue or Cancel) and `deviceSuccess`. Signing in and consenting in between are the OP's usual
 * interaction screens.
 *
 * @example
 * features: { deviceFlow: deviceFlowFeature(views) }
 */
export function deviceFlowFeature(views: BrandedViews): NonNullable<Configuration['features']>['deviceFlow'] {
  return {
    enabled: true,
    async userCodeInputSource(ctx, _form, _out, err) {
      const session = ctx.oidc.session;
      if (err && session && typeof session.exp !== 'number') {
        // a form posted without an OP session (its cookie gone, or a form from another site): oidc-provider
        // cannot keep the new CSRF token from here (it would answer 500), so start over at the code page
        (session as unknown as { touched: boolean }).touched = false;
        ctx.status = 303;
        ctx.redirect(ctx.oidc.urlFor('code_verification'));
        return;
      }
      const userCode = (err as { userCode?: unknown } | undefined)?.userCode;
      await page(ctx, views, 'deviceInput', {
        title: 'Sign in a device', action: ctx.oidc.urlFor('code_verification'), fields: hidden({ xsrf: xsrfOf(ctx) }),
        userCode: typeof userCode === 'string' ? userCode.slice(0, 64) : undefined,
        error: err ? messageOf(err) : undefined,
      });
    },
    async userCodeConfirmSource(ctx, _form, client, _deviceInfo, userCode) {
      await page(ctx, views, 'deviceConfirm', {
        title: 'Is this your device?', clientName: client.clientName ?? client.clientId, clientUri: client.clientUri, logoUri: client.logoUri,
        userCode, action: ctx.oidc.urlFor('code_verification'), fields: hidden({ xsrf: xsrfOf(ctx), user_code: userCode }),
      });
    },
    async successSource(ctx) {
      const client = ctx.oidc.client;
      await page(ctx, views, 'deviceSuccess', { title: 'Device signed in', clientName: client?.clientName ?? client?.clientId });
    },
  };
}

const RESUMING = 'This device sign-in is already being completed (in another tab or window, or by a request a moment ago): '
  + `check your device. If it is not signed in, reload this page in ${RESUME_CLAIM_SECONDS} seconds.`;

/**
 * The device flow's resume (`GET /device/:uid`, after the login or consent) takes its one-time claim
 * (request-scope.ts) here, before oidc-provider runs. Taken where the code flow's is, in the
 * interaction's delete, a resume refused there (the same consent's redirect followed twice at once, or a
 * retry while the claim of an instance killed mid-resume lasts) threw inside oidc-provider's device
 * error handler, which wrote the refusal into the DeviceCode: the device got `invalid_request`, though
 * the other resume had told the user "Device signed in", and the retry after the claim lapsed found the
 * code "already used". The loser gets this 409 page instead, and the device code stays as it was.
 * Only a request with this sign-in's resume cookie, as the OP signed it, claims: one with a cookie merely
 * named so (without it oidc-provider finds no sign-in to resume) took the claim for anyone who knew the uid.
 * The claim is given back when the response closes unanswered, and at once when it had closed while the
 * claim was being taken (a listener added after that never ran: the claim was held its RESUME_CLAIM_SECONDS).
 */
export function claimDeviceResume(store: OpStore, provider: Provider, views: Views): RequestHandler {
  const resumeCookie = provider.cookieName('resume');
  return (req, res, next) => {
    const id = String(req.params.uid);
    // read as oidc-provider's resume reads it (keygrip-signed, the OP's cookieKeys); its value is the interaction's uid
    if (provider.createContext(req, res).cookies.get(resumeCookie, { signed: true }) !== id) return next();
    let claim: ResumeClaim | undefined;
    const giveBack = (release: () => Promise<void>): void => {
      release().catch((err: unknown) => log('a resume\'s claim was not given back (it lapses): %s', (err as Error)?.message));
    };
    // listened for before the claim is asked for: the connection may close during that round trip
    res.once('close', () => {
      // not taken over by the interaction's delete (oidc-provider refused the resume before it): given back with the answer
      if (claim && !claim.adopted) giveBack(claim.release);
    });
    takeResumeClaim(store, id).then((release) => {
      if (!release) {
        log('a device flow resume of interaction %s refused: another request holds its claim (followed twice, or its instance died mid-resume)', id);
        // the way on is this page again (not "return to the application": the user came from a device)
        return sendRefusal(req, res, views, { status: 409, code: 'resume_in_progress', message: RESUMING, backUrl: req.originalUrl, backLabel: 'Check again' });
      }
      if (res.destroyed) {
        log('a device flow resume of interaction %s closed before it was claimed: claim given back', id);
        return giveBack(release);
      }
      claim = { id, release, adopted: false };
      (req as Request & { [RESUME_CLAIMED]?: ResumeClaim })[RESUME_CLAIMED] = claim;
      next();
    }).catch(next);
  };
}
