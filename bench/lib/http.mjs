// A minimal browser for benchmarks: one cookie jar per "user", fetch without following redirects.

/** Cookies of one browser (name → value; every server here is on 127.0.0.1, so one jar per origin is enough). */
export class Jar {
  cookies = new Map();

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      const expired = attrs.some((a) => /^\s*(expires=Thu, 01 Jan 1970|max-age=0)/i.test(a))
        || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) <= Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** How long one request may take: under callgrind (MEASURE=instructions) on a busy host a login's steps take seconds. */
const TIMEOUT_MS = Number(process.env.REQUEST_TIMEOUT_MS || (process.env.MEASURE === 'instructions' ? 120_000 : 10_000));

/** GET or POST `url` with the jar's cookies; keeps the answer's cookies; never follows redirects. */
export async function request(jar, url, init = {}) {
  const headers = new Headers(init.headers);
  const cookie = jar.header();
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
  jar.take(response);
  return response;
}

/** The absolute Location of a redirect, or an error that says what came instead. */
export async function locationOf(response, what) {
  const location = response.headers.get('location');
  if (response.status < 300 || response.status >= 400 || !location) {
    const body = (await response.text()).slice(0, 300);
    throw new Error(`${what}: expected a redirect, got HTTP ${response.status}: ${body}`);
  }
  await response.body?.cancel();
  return new URL(location, response.url);
}

/**
 * One whole login of `user` ({ opJar, interactions }) at `app` ({ baseURL, loginPath }): login → OP
 * (the interaction, as alice, only without an OP session) → callback → /me, which must answer alice.
 * Resolves with the app's cookie jar of that login.
 */
export async function roundTrip(app, opOrigin, user) {
  const jar = new Jar(); // a new visitor of the app each time; the OP session is the user's
  let next = await locationOf(await request(jar, app.baseURL + app.loginPath), 'login route');
  for (let hop = 0; next.origin === opOrigin; hop += 1) {
    if (hop > 10) throw new Error('too many redirects at the OP');
    const interaction = /^\/interaction\/[^/]+$/.test(next.pathname);
    if (interaction) user.interactions += 1;
    const response = interaction
      ? await request(user.opJar, `${next.href}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'account=alice' })
      : await request(user.opJar, next.href);
    next = await locationOf(response, `OP ${next.pathname}`);
  }
  await locationOf(await request(jar, next.href), 'callback');
  const me = await request(jar, `${app.baseURL}/me`);
  const body = await me.json().catch(() => ({}));
  if (me.status !== 200 || body.sub !== 'alice') throw new Error(`GET /me after login answered ${me.status} ${JSON.stringify(body)}`);
  return jar;
}
