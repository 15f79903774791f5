import { escapeHtml, pageHref, isolate } from './escape.js';

/** What the error view is drawn from. Never carries a stack trace or a secret. */
export interface ErrorViewProps {
  title: string;
  status: number;
  /** Stable code, e.g. `invalid_request`, `csrf_invalid`, `interaction_expired`. */
  code: string;
  /** What happened, in plain words, safe to show the user. */
  message: string;
  /** Where the way back leads, when there is a sensible place (the client's site, the sign-in page). */
  backUrl?: string;
  /** The text of that link. Default "Go back". */
  backLabel?: string;
  /** The application the user came from, when known. */
  clientName?: string;
  /** oidc-provider's technical description of the error, for the app's developers. */
  details?: string;
}

/**
 * The default error view: what happened in plain words, a way back, then the code for developers.
 *
 * @example
 * op({ issuer, accounts, views: { error: (p) => `<h1>${p.title}</h1>` } });
 */
export function error(p: ErrorViewProps): string {
  const back = pageHref(p.backUrl);
  const app = p.clientName ? isolate(p.clientName) : 'the application you came from';
  const way = back
    ? `<p><a class="button" href="${escapeHtml(back)}">${escapeHtml(p.backLabel ?? 'Go back')}</a></p>`
    : `<p>Return to ${app} and try again.</p>`;
  const details = p.details && p.details !== p.message ? ` · ${escapeHtml(p.details)}` : '';
  return `<h1>${escapeHtml(p.title)}</h1>
<p role="alert">${escapeHtml(p.message)}</p>
${way}
<p class="muted">Error code: <code>${escapeHtml(p.code)}</code>${details}</p>`;
}
