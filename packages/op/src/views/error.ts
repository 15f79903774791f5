import { escapeHtml, safeHref } from './escape.js';

/** What the error view is drawn from. Never carries a stack trace or a secret. */
export interface ErrorViewProps {
  title: string;
  status: number;
  /** Stable code, e.g. `invalid_request`, `csrf_invalid`, `interaction_expired`. */
  code: string;
  /** A message safe to show the user. */
  message: string;
  /** Where "Go back" leads, when there is a sensible place. */
  backUrl?: string;
}

/**
 * The default error view.
 *
 * @example
 * op({ issuer, accounts, views: { error: (p) => `<h1>${p.title}</h1>` } });
 */
export function error(p: ErrorViewProps): string {
  const back = safeHref(p.backUrl) ?? (p.backUrl?.startsWith('/') ? p.backUrl : undefined);
  return `<h1>${escapeHtml(p.title)}</h1>
<p role="alert">${escapeHtml(p.message)}</p>
<p class="muted">Error code: <code>${escapeHtml(p.code)}</code></p>
${back ? `<p><a href="${escapeHtml(back)}">Go back</a></p>` : '<p class="muted">Return to the application you came from and try again.</p>'}`;
}
