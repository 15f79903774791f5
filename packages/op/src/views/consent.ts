import { clientLogo, escapeHtml, safeHref, isolate } from './escape.js';
import type { ClientScreenProps } from './login.js';

/** A scope or claim in plain words. */
export interface ConsentItem {
  name: string;
  description: string;
}

/** What the consent view is drawn from. */
export interface ConsentViewProps extends ClientScreenProps {
  policyUri?: string;
  tosUri?: string;
  /** Posting here approves. */
  action: string;
  /** Posting here denies: `access_denied` at the client. */
  abortAction: string;
  csrf: string;
  scopes: ConsentItem[];
  claims: ConsentItem[];
  /** Who is consenting: the account's email, username or name (its id when it has none). */
  account?: string;
  /** A page where someone else can sign in instead (this interaction's login form), when the flow allows it. */
  switchAccountUrl?: string;
}

function list(items: ConsentItem[]): string {
  return `<ul>${items.map((i) => `<li>${escapeHtml(i.description)}</li>`).join('')}</ul>`;
}

function link(label: string, uri: string | undefined): string {
  const href = safeHref(uri);
  return href ? `<a href="${escapeHtml(href)}">${isolate(label)}</a>` : '';
}

/**
 * The default consent view: who is signed in (and a way to switch), who asks, for what in plain
 * words, then "Allow" and "Deny".
 *
 * @example
 * op({ issuer, accounts, views: { consent: 'consent' } }); // rendered by the app's engine
 */
export function consent(p: ConsentViewProps): string {
  const links = [link('Privacy policy', p.policyUri), link('Terms of service', p.tosUri)].filter(Boolean);
  const client = link(p.clientName, p.clientUri) || isolate(p.clientName);
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(p.csrf)}">`;
  const other = p.switchAccountUrl ? ` <a href="${escapeHtml(p.switchAccountUrl)}">Use another account</a>` : '';
  const account = p.account ? `<p class="account">Signed in as <strong>${isolate(p.account)}</strong>.${other}</p>\n` : '';
  return `${clientLogo(p.logoUri)}<h1>${escapeHtml(p.title)}</h1>
${account}<p><strong>${client}</strong> asks to:</p>
${p.scopes.length ? list(p.scopes) : ''}
${p.claims.length ? `<p>and to see:</p>${list(p.claims)}` : ''}
${links.length ? `<p class="muted">${links.join(' · ')}</p>` : ''}
<form method="post" action="${escapeHtml(p.action)}">
${csrf}
<button type="submit">Allow</button>
</form>
<form method="post" action="${escapeHtml(p.abortAction)}">
${csrf}
<button type="submit" class="secondary">Deny</button>
</form>`;
}
