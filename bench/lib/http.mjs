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

/** GET or POST `url` with the jar's cookies; keeps the answer's cookies; never follows redirects. */
export async function request(jar, url, init = {}) {
  const headers = new Headers(init.headers);
  const cookie = jar.header();
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
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
