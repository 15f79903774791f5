/**
 * Drives HTML forms like a browser without JavaScript: fetch + a cookie jar (paths honoured),
 * manual redirects, and a small form parser. Used to walk the OP's login / consent / logout
 * screens from tests.
 *
 * API:
 * - `new FormBrowser({ stopAt, headers })`: `stopAt(url)` says which redirect targets are not fetched
 *   (e.g. the client's redirect_uri); the page then has `stoppedAt` set to that URL. `headers` go
 *   with every request (e.g. X-Forwarded-For).
 * - `browser.open(url)`: GET, following redirects. Returns a `BrowserPage`.
 * - `browser.submit(page, { has, action, id }, fields)`: posts the first form of `page` that has a
 *   field named `has` / an action containing `action` / the id `id`, with its own fields (hidden
 *   inputs, CSRF token included) overridden by `fields`; follows redirects.
 * - `browser.post(url, fields, headers?)`: a raw form POST (for forged requests); `headers` (also
 *   the last argument of `submit`) go with that request only, not the redirects it leads to.
 * - `signIn(browser, authorizationUrl, { login, password, consent })`: the whole login (+ consent)
 *   walk; returns the last page (normally `stoppedAt` = the callback URL with code and state).
 * - `parseForms(html, baseUrl)`, `CookieJar`: the pieces.
 */

export interface HtmlForm {
  id?: string;
  action: string;
  method: string;
  /** Named inputs and their values (hidden, text ...); buttons outside are not included. */
  fields: Record<string, string>;
}

export interface BrowserPage {
  url: string;
  status: number;
  html: string;
  headers: Headers;
  forms: HtmlForm[];
  /** The redirect target that matched `stopAt`, when the walk stopped there. */
  stoppedAt?: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`' };
const decode = (s: string) => s.replace(/&(amp|lt|gt|quot|#39|#96);/g, (_, e: string) => ENTITIES[e]!);

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1]!.toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of an HTML page, actions resolved against `baseUrl`. */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1]!);
    const fields: Record<string, string> = {};
    for (const input of m[2]!.matchAll(/<input\b([^>]*)>/gi)) {
      const i = attrs(input[1]!);
      if (i.name && i.type !== 'submit') fields[i.name] = i.value ?? '';
    }
    forms.push({ id: a.id, action: new URL(a.action ?? '', baseUrl).href, method: (a.method ?? 'get').toLowerCase(), fields });
  }
  return forms;
}

interface Cookie { name: string; value: string; host: string; path: string; expires?: number }

/** A cookie jar: keeps Path, Max-Age and Expires; cookies go to their host name (any port, as in browsers). */
export class CookieJar {
  private cookies: Cookie[] = [];

  store(url: string, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const cookie: Cookie = { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), host: new URL(url).hostname, path: '/' };
      const defaultPath = new URL(url).pathname.replace(/\/[^/]*$/, '') || '/';
      cookie.path = defaultPath;
      for (const attr of attributes) {
        const [k, v = ''] = attr.split('=');
        const key = k!.toLowerCase();
        if (key === 'path') cookie.path = v || '/';
        if (key === 'max-age') cookie.expires = Date.now() + Number(v) * 1000;
        if (key === 'expires' && cookie.expires === undefined) cookie.expires = Date.parse(v);
      }
      this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.path === cookie.path && c.host === cookie.host));
      if (cookie.expires === undefined || cookie.expires > Date.now()) this.cookies.push(cookie);
    }
  }

  header(url: string): string {
    const { pathname: path, hostname } = new URL(url);
    return this.cookies
      .filter((c) => c.host === hostname && (c.expires === undefined || c.expires > Date.now())
        && (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** Names of the cookies held (for assertions). */
  names(): string[] {
    return this.cookies.map((c) => c.name);
  }

  clear(): void {
    this.cookies = [];
  }
}

export class FormBrowser {
  readonly jar = new CookieJar();

  /**
   * `resolve`: where a URL is really served (as a host-resolver rule does): a sample whose issuer is a
   * public name (`https://id.example.com/op`) served on loopback.
   */
  constructor(private readonly options: { stopAt?: (url: URL) => boolean; headers?: Record<string, string>; resolve?: (url: URL) => URL } = {}) {}

  private resolved(url: string): string {
    return this.options.resolve ? this.options.resolve(new URL(url)).href : url;
  }

  private async request(url: string, init: RequestInit): Promise<BrowserPage> {
    let current = this.resolved(url);
    let next: RequestInit = init;
    for (let hops = 0; hops < 20; hops += 1) {
      const headers = new Headers(this.options.headers);
      new Headers(next.headers).forEach((value, name) => headers.set(name, value));
      const cookie = this.jar.header(current);
      if (cookie) headers.set('cookie', cookie);
      headers.set('accept', 'text/html');
      const res = await fetch(current, { ...next, headers, redirect: 'manual' });
      this.jar.store(current, res.headers);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        const target = new URL(location, current);
        if (this.options.stopAt?.(target)) {
          return { url: current, status: res.status, html: '', headers: res.headers, forms: [], stoppedAt: target.href };
        }
        current = this.resolved(target.href);
        next = { method: 'GET' };
        continue;
      }
      const html = await res.text();
      return { url: current, status: res.status, html, headers: res.headers, forms: parseForms(html, current) };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  open(url: string): Promise<BrowserPage> {
    return this.request(url, { method: 'GET' });
  }

  /** `headers`: for this request only (not the redirects it leads to). */
  post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<BrowserPage> {
    return this.request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** The first form of `page` matching `match`; throws with the page's text when there is none. */
  form(page: BrowserPage, match: { has?: string; action?: string; id?: string; value?: [string, string] }): HtmlForm {
    const form = page.forms.find((f) => (!match.has || match.has in f.fields)
      && (!match.action || f.action.includes(match.action)) && (!match.id || f.id === match.id)
      && (!match.value || f.fields[match.value[0]] === match.value[1]));
    if (!form) {
      const text = page.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      throw new Error(`no form matching ${JSON.stringify(match)} on ${page.url} (${page.status}): ${text.slice(0, 500)}`);
    }
    return form;
  }

  submit(page: BrowserPage, match: Parameters<FormBrowser['form']>[1], fields: Record<string, string> = {}, headers?: Record<string, string>): Promise<BrowserPage> {
    const form = this.form(page, match);
    return this.post(form.action, { ...form.fields, ...fields }, headers);
  }
}

/**
 * Opens `authorizationUrl`, signs in with the password form and answers the consent screen when
 * one is shown (`consent: 'allow'` by default). Returns the last page.
 */
export async function signIn(
  browser: FormBrowser,
  authorizationUrl: string,
  creds: { login: string; password: string; consent?: 'allow' | 'deny' },
): Promise<BrowserPage> {
  let page = await browser.open(authorizationUrl);
  if (page.stoppedAt) return page;
  page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: creds.login, password: creds.password });
  if (page.stoppedAt || !page.url.includes('/interaction/')) return page;
  if (creds.consent === 'deny') return browser.submit(page, { action: '/abort' });
  return browser.submit(page, { action: '/confirm' });
}
