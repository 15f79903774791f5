import type { Request, Response } from 'express';
import { isLastingRefusal, isResumeInProgress, warnStoreFailure } from './errors.js';
import { renderPage, type Views } from './views/render.js';

/** Headers of every page the OP's own screens send: never cached, never framed. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** Sets `PAGE_HEADERS` on an Express response. */
export function pageHeaders(res: Response): void {
  res.set(PAGE_HEADERS);
}

/** Titles of the error page by status. */
const TITLES: Record<number, string> = {
  400: 'This request cannot be completed',
  404: 'There is no such page',
  403: 'This form has expired',
  429: 'Too many attempts',
  500: 'Something went wrong',
  503: 'Please try again in a moment',
};

/** Titles for codes whose status says too little. */
const CODE_TITLES: Record<string, string> = {
  interaction_expired: 'This sign-in has expired',
  cookies_missing: 'Cookies are needed to sign in',
  resume_in_progress: 'This sign-in is already being completed',
};

/** Answers with the error view: status, stable code, a message safe to show, never a stack. */
export async function sendErrorPage(
  req: Request, res: Response, views: Views,
  e: { status: number; code: string; message: string; title?: string; backUrl?: string; backLabel?: string; clientName?: string },
): Promise<void> {
  const title = e.title ?? CODE_TITLES[e.code] ?? TITLES[e.status] ?? 'Error';
  let html: string;
  try {
    html = await renderPage(req, views, 'error', {
      title, status: e.status, code: e.code, message: e.message, backUrl: e.backUrl, backLabel: e.backLabel, clientName: e.clientName,
    });
  } catch {
    // the app's error view itself failed
    html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head><body><main><h1>Error</h1><p>${e.code}</p></main></body></html>`;
  }
  pageHeaders(res);
  res.status(e.status).type('html').send(html);
}

/** A refusal as JSON `{ error, error_description }` for API clients and as the error page for browsers. */
export async function sendRefusal(
  req: Request, res: Response, views: Views, e: { status: number; code: string; message: string; backUrl?: string; backLabel?: string },
): Promise<void> {
  res.set('Cache-Control', 'no-store');
  if (req.accepts(['html', 'json']) === 'json') {
    res.status(e.status).json({ error: e.code, error_description: e.message });
    return;
  }
  await sendErrorPage(req, res, views, e);
}

/** The path a request came to (no query, no control characters, at most 200 characters), as a message names it. */
export const shownPath = (req: Request): string => (req.originalUrl ?? req.url).split('?')[0]!.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 200);

/**
 * A method the path does not take: 405 with `Allow` (RFC 9110 §15.5.6), and `OPTIONS` 204 with
 * `Allow`. `allow` lists the methods the path takes, `OPTIONS` last.
 */
export async function sendMethodNotAllowed(req: Request, res: Response, views: Views, allow: string): Promise<void> {
  res.setHeader('Allow', allow);
  if (req.method === 'OPTIONS') return void res.writeHead(204).end();
  await sendRefusal(req, res, views, {
    status: 405, code: 'method_not_allowed', message: `${shownPath(req)} does not take ${req.method} requests: it takes ${allow.replace(', OPTIONS', '')}.`,
  });
}

/** What a request gets while the shared store (Redis) is unavailable. */
export const STORE_UNAVAILABLE = {
  status: 503, code: 'store_unavailable', retryAfter: 5,
  message: 'The service is briefly unavailable. Nothing was lost; try again in a few seconds.',
} as const;

/**
 * What it gets while the store refuses the OP until its operators change a setting (a password, an
 * ACL user, a full Redis's maxmemory: `StoreUnavailableError.lasting`, said in the log once a minute): the same 503 and
 * `Retry-After` (as @openid-express/rp answers), but no promise that it passes in a few seconds.
 */
export const STORE_REFUSED = {
  ...STORE_UNAVAILABLE, title: 'This service is unavailable',
  message: 'The service cannot do this right now because of a problem on its side, which its operators have been told about. Nothing was lost; please try again later.',
} as const;

/**
 * What a sign-in's resume gets when another request still holds its claim after it waited for it
 * (request-scope.ts): that request is completing the sign-in, or failing, and a retry finds out which.
 */
export const RESUME_IN_PROGRESS = {
  status: 503, code: 'resume_in_progress', retryAfter: 2, title: 'This sign-in is already being completed',
  message: 'Another request is completing this sign-in right now (the page was sent twice, or a server stopped while answering it). Nothing was lost; reload this page in a few seconds.',
} as const;

/** A 503 answer: what it says, and when to try again (`Retry-After`). */
export type UnavailableAnswer = { status: 503; code: string; message: string; retryAfter: number; title?: string };

/** What a visitor is told of `failure`: never what the store answered (that is the log's, `warnStoreFailure`). */
export function unavailableAnswer(failure: unknown): UnavailableAnswer {
  return isResumeInProgress(failure) ? RESUME_IN_PROGRESS : isLastingRefusal(failure) ? STORE_REFUSED : STORE_UNAVAILABLE;
}

/**
 * Answers 503 `store_unavailable` for `failure` (the store's error) with `Retry-After` and
 * `Cache-Control: no-store`: JSON for API clients, the error page for browsers; in the words of
 * `STORE_REFUSED` for a lasting refusal, `RESUME_IN_PROGRESS` for a ResumeInProgressError. The
 * failure itself is said in the log (at most once a minute per failure), never to the visitor.
 * `wantsJson` defaults to Express's negotiation (HTML first); oidc-provider's routes pass their own (JSON first).
 */
export async function sendStoreUnavailable(
  req: Request, res: Response, views: Views, failure?: unknown, wantsJson = req.accepts(['html', 'json']) === 'json',
): Promise<void> {
  warnStoreFailure(failure);
  const answer = unavailableAnswer(failure);
  const { status, code, message, retryAfter } = answer;
  res.set({ 'Retry-After': String(retryAfter), 'Cache-Control': 'no-store' });
  // a page allowed to read this answer (an SPA at the token endpoint) must be able to read when to retry too
  if (res.hasHeader('access-control-allow-origin')) {
    const exposed = String(res.getHeader('access-control-expose-headers') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
    if (!exposed.some((h) => h.toLowerCase() === 'retry-after')) res.set('access-control-expose-headers', [...exposed, 'Retry-After'].join(', '));
  }
  if (wantsJson) {
    res.status(status).json({ error: code, error_description: message });
    return;
  }
  await sendErrorPage(req, res, views, { status, code, message, title: answer.title });
}
