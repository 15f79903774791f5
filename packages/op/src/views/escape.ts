const ENTITIES: Record<string, string> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;',
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * `<p>${escapeHtml(userInput)}</p>`
 */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

/**
 * Text of someone else's (a client's name, an account's) escaped and isolated (`<bdi>`): a name
 * ending in a right-to-left override (U+202E) cannot turn the page's own words around it backwards.
 *
 * @example
 * isolate('Photo Print\u202E') // '<bdi>Photo Print\u202E</bdi>'
 */
export function isolate(value: unknown): string {
  return `<bdi>${escapeHtml(value)}</bdi>`;
}

/**
 * Plain text of someone else's (a client's name) for text that is escaped whole later (a message, a
 * link's label), without the characters that force a direction (U+202A–U+202E, U+2066–U+2069): a
 * name ending in a right-to-left override cannot turn the words after it backwards. (Isolating it
 * with U+2068 … U+2069 instead would put invisible characters in a link's accessible name, which
 * voice control and tests match against.)
 */
export function withoutBidiControls(value: string): string {
  return value.replace(/[\u202a-\u202e\u2066-\u2069]/g, '');
}

/**
 * The client's logo (`logo_uri`) as an image, or '' when there is none or it is not http(s).
 *
 * @example
 * clientLogo('https://app.example.com/logo.png') // '<img class="logo" src="https://app.example.com/logo.png" alt="" ...>'
 */
export function clientLogo(uri: unknown): string {
  const src = safeHref(uri);
  return src ? `<img class="logo" src="${escapeHtml(src)}" alt="" width="48" height="48">` : '';
}

/** An http(s) URL safe to put in an href, or undefined (no `javascript:` links from client metadata). */
export function safeHref(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An http(s) URL or a path on this site (`/logo.svg`, never `//other.example`), safe in an href or
 * src; otherwise undefined.
 *
 * @example
 * pageHref('/') // '/'
 */
export function pageHref(value: unknown): string | undefined {
  if (typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\')) return value;
  return safeHref(value);
}
