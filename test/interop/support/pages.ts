/** Checks on the pages an interop test's browser lands on, with the page's text when they fail. */
import type { BrowserPage } from '../../support/op-forms.js';

/** The page's visible text, to make a failed expectation readable. */
export const text = (page: BrowserPage) => page.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();

/** Throws unless `page` is at a URL containing `where`, naming `what` was expected and what came. */
export function expectAt(page: BrowserPage, where: string, what: string): void {
  if (!page.url.includes(where)) {
    throw new Error(`expected ${what} (${where}), got ${page.status} at ${page.url}: ${text(page).slice(0, 400)}`);
  }
}
