// The scripted user agent: the person at the OP's pages, without a browser. fetch + a cookie jar +
// a small form parser; it signs in on the OP's real password form, consents, and stops where the
// OP sends the browser back to the client (a redirect to the redirect_uri, or a form_post page).
import { plainFetch } from './recorder.mjs';
import { SECRET_MASK, prefix } from './wire.mjs';

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`', '#x2F': '/', '#x3D': '=' };
const decode = (s) => s.replace(/&(amp|lt|gt|quot|#39|#96|#x2F|#x3D);/g, (_, e) => ENTITIES[e]);

function attributes(tag) {
  const out = {};
  for (const m of tag.matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of an HTML page: action (absolute), method and named inputs. */
export function parseForms(html, baseUrl) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attributes(m[1]);
    const fields = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const i = attributes(input[1]);
      if (i.name && i.type !== 'submit') fields[i.name] = i.value ?? '';
    }
    forms.push({ id: a.id, action: new URL(a.action ?? '', baseUrl).href, method: (a.method ?? 'get').toLowerCase(), fields });
  }
  return forms;
}

/** A cookie jar keeping Path, Max-Age and Expires; cookies go back to their host. */
class CookieJar {
  cookies = [];

  store(url, headers) {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), host: new URL(url).hostname, path: new URL(url).pathname.replace(/\/[^/]*$/, '') || '/' };
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') cookie.path = v || '/';
        if (k.toLowerCase() === 'max-age') cookie.expires = Date.now() + Number(v) * 1000;
        if (k.toLowerCase() === 'expires' && cookie.expires === undefined) cookie.expires = Date.parse(v);
      }
      this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.path === cookie.path && c.host === cookie.host));
      if (cookie.expires === undefined || cookie.expires > Date.now()) this.cookies.push(cookie);
    }
  }

  header(url) {
    const { pathname, hostname } = new URL(url);
    return this.cookies
      .filter((c) => c.host === hostname && (c.expires === undefined || c.expires > Date.now())
        && (pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

/** What a hop looks like in the story: method, where, status, and the fields posted, masked. */
function hop(method, url, status, extra = {}) {
  return { method, url: withoutQuery(url), status, ...extra, ...(extra.location ? { location: withoutQuery(extra.location) } : {}) };
}

/** A URL with its query and fragment shown as "?…" (they carry codes, tokens, request objects: printed elsewhere, masked). */
function withoutQuery(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname}${u.search || u.hash ? '?…' : ''}`;
}

function maskedForm(fields) {
  const out = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'password') out[k] = SECRET_MASK;
    else if (v.length > 24) out[k] = prefix(v);
    else out[k] = v;
  }
  return out;
}

/**
 * A user agent for one story. `stopAt(url)` says which redirect targets belong to the client (not
 * followed); every request it makes is kept in `hops` for the printer.
 */
export class UserAgent {
  jar = new CookieJar();

  constructor({ stopAt }) {
    this.stopAt = stopAt;
    this.hops = [];
  }

  async request(url, init, label) {
    let current = url;
    let next = init;
    for (let n = 0; n < 20; n += 1) {
      const headers = new Headers(next.headers);
      const cookie = this.jar.header(current);
      if (cookie) headers.set('cookie', cookie);
      headers.set('accept', 'text/html');
      const res = await plainFetch(current, { ...next, headers, redirect: 'manual' });
      this.jar.store(current, res.headers);
      const location = res.headers.get('location');
      const form = next.fields ? { form: maskedForm(next.fields) } : {};
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        const target = new URL(location, current);
        this.hops.push(hop(next.method, current, res.status, { ...form, location: target.href, ...(n === 0 && label ? { label } : {}) }));
        if (this.stopAt(target)) return { url: current, status: res.status, html: '', forms: [], stoppedAt: target };
        current = target.href;
        next = { method: 'GET' };
        continue;
      }
      const html = await res.text();
      const page = { url: current, status: res.status, html, forms: parseForms(html, current) };
      this.hops.push(hop(next.method, current, res.status, { ...form, page: describePage(page), ...(n === 0 && label ? { label } : {}) }));
      return page;
    }
    throw new Error(`too many redirects from ${url}`);
  }

  open(url, label) {
    return this.request(url, { method: 'GET' }, label);
  }

  post(url, fields, label) {
    return this.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString(), fields }, label);
  }

  /** The first form of `page` matching `match` (a field it has, a part of its action, a field's value). */
  form(page, match) {
    const form = page.forms.find((f) => (!match.has || match.has in f.fields) && (!match.action || f.action.includes(match.action))
      && (!match.value || f.fields[match.value[0]] === match.value[1]));
    if (!form) throw new Error(`the OP's page ${page.url} (${page.status}) has no form ${JSON.stringify(match)}: ${visibleText(page.html).slice(0, 300)}`);
    return form;
  }

  submit(page, match, fields = {}, label) {
    const form = this.form(page, match);
    return this.post(form.action, { ...form.fields, ...fields }, label);
  }
}

/** The visible text of an HTML page, for messages. */
export function visibleText(html) {
  return html.replace(/<(style|script)[\s\S]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

function describePage(page) {
  const title = /<title>([^<]*)<\/title>/i.exec(page.html)?.[1];
  return title ? decode(title) : `${page.forms.length} form(s)`;
}

/**
 * The person signs in on the OP's password form and allows the consent screen: from the
 * authorization URL to the moment the OP answers the client (a redirect to `redirectUri`, or an
 * auto-submitting form_post page). Returns the authorization response: `{ method, url, params }`.
 */
export async function signIn(agent, authorizationUrl, { login, password, redirectUri }) {
  let page = await agent.open(authorizationUrl, 'the authorization request');
  for (let screens = 0; screens < 4 && !page.stoppedAt; screens += 1) {
    const posted = formPostTo(page, redirectUri);
    if (posted) return posted;
    if (page.forms.some((f) => f.fields.authenticator === 'password')) {
      page = await agent.submit(page, { value: ['authenticator', 'password'] }, { login, password }, 'sign in');
    } else if (page.forms.some((f) => f.action.includes('/confirm'))) {
      page = await agent.submit(page, { action: '/confirm' }, {}, 'consent: allow');
    } else {
      throw new Error(`the OP answered a page the user cannot go on from: ${page.url} (${page.status}) ${visibleText(page.html).slice(0, 300)}`);
    }
  }
  if (!page.stoppedAt) {
    const posted = formPostTo(page, redirectUri);
    if (posted) return posted;
    throw new Error(`the OP never sent the user back to the client: ${page.url} (${page.status}) ${visibleText(page.html).slice(0, 300)}`);
  }
  const url = page.stoppedAt;
  const params = new URLSearchParams(url.search);
  if (url.hash) new URLSearchParams(url.hash.slice(1)).forEach((v, k) => params.append(k, v));
  return { method: 'GET', url: `${url.origin}${url.pathname}`, params };
}

/** The OP's form_post answer (OAuth 2.0 Form Post Response Mode): its fields are the response. */
function formPostTo(page, redirectUri) {
  const form = page.forms.find((f) => f.method === 'post' && f.action === redirectUri);
  if (!form) return undefined;
  return { method: 'POST', url: form.action, params: new URLSearchParams(form.fields) };
}

/**
 * The person at the OP's device page (RFC 8628 §3.3): types the user code, confirms it is their
 * device, signs in and consents. Returns the last page's title.
 */
export async function enterUserCode(agent, verificationUri, userCode, { login, password }) {
  const input = await agent.open(verificationUri, 'the verification URI');
  let page = await agent.submit(input, { has: 'user_code' }, { user_code: userCode }, 'type the user code');
  page = await agent.submit(page, { has: 'user_code' }, { confirm: 'yes' }, 'confirm: this is my device');
  if (page.forms.some((f) => f.fields.authenticator === 'password')) page = await agent.submit(page, { value: ['authenticator', 'password'] }, { login, password }, 'sign in');
  if (page.forms.some((f) => f.action.includes('/confirm'))) page = await agent.submit(page, { action: '/confirm' }, {}, 'consent: allow');
  return { status: page.status, title: describePage(page), text: visibleText(page.html) };
}
