/**
 * The doctor's own HTTP probes: no redirects followed, a deadline, the OP's cookies noted by host
 * (for the cookie-name check) and short, one-line descriptions of failures and OP error pages.
 */

/** One answer, read whole. */
export interface Probe {
  url: string;
  status: number;
  headers: Headers;
  /** The Location header resolved against `url`. */
  location?: string;
  text: string;
  /** Local clock (ms) when the request was sent and the answer arrived. */
  sentAt: number;
  receivedAt: number;
}

export class Http {
  /** Host name → names of cookies set by answers from that host. */
  readonly cookies = new Map<string, Set<string>>();
  /** Host name → the first answer from that host (its Date header is the host's clock). */
  readonly answers = new Map<string, Probe>();

  constructor(private readonly fetchImpl: typeof fetch, readonly timeoutMs: number) {}

  /** One request; `own: true` for requests to the app itself, whose cookies are not the OP's. */
  async request(url: string, init: RequestInit = {}, opts: { own?: boolean } = {}): Promise<Probe> {
    const sentAt = Date.now();
    const response = await this.fetchImpl(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    const receivedAt = Date.now();
    const text = await response.text().catch(() => '');
    const host = new URL(url).hostname;
    for (const line of opts.own ? [] : response.headers.getSetCookie?.() ?? []) {
      const name = line.split('=')[0]?.trim();
      if (!name) continue;
      if (!this.cookies.has(host)) this.cookies.set(host, new Set());
      this.cookies.get(host)!.add(name);
    }
    const location = response.headers.get('location');
    const probe = { url, status: response.status, headers: response.headers, location: location ? new URL(location, url).href : undefined, text, sentAt, receivedAt };
    if (!opts.own && !this.answers.has(host)) this.answers.set(host, probe);
    return probe;
  }
}

/** Why a request failed, in a few words: "connection refused (ECONNREFUSED)", "no answer within 10 s" … */
export function networkError(err: unknown, timeoutMs: number): string {
  for (let e = err as { name?: string; code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
    if (e.code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED): nothing listens there';
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `host name not found (${e.code})`;
    if (typeof e.code === 'string' && /^(E[A-Z]+|UND_ERR_\w+|ERR_TLS\w*|CERT_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_\w+)$/.test(e.code)) {
      return `${e.message ?? 'failed'} (${e.code})`;
    }
  }
  return (err as Error)?.message ?? String(err);
}

/** The OP's error in an answer, on one line: `error: description` of a JSON body, or the text of an HTML page. */
export function opErrorText(probe: Probe): string {
  const short = (s: string): string => s.replace(/\s+/g, ' ').trim().slice(0, 200);
  try {
    const body = JSON.parse(probe.text) as { error?: unknown; error_description?: unknown };
    if (typeof body.error === 'string') return short(`${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}`);
  } catch {
    // not JSON
  }
  const text = probe.text
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  // oidc-provider's error page: "error : invalid_request error_description : post_logout_redirect_uri not registered state : …"
  const page = /\berror\s*:\s*([a-z_]+)\s+error_description\s*:\s*(.*?)(?:\s+(?:state|iss|error_uri)\s*:|$)/s.exec(text.replace(/\s+/g, ' '));
  if (page) return short(`${page[1]}: ${page[2]}`);
  const code = /\b(invalid_[a-z_]+|unauthorized_client|redirect_uri_mismatch|access_denied|unsupported_[a-z_]+|server_error)\b/.exec(text);
  return short(code ? text.slice(code.index) : text);
}

/** "answered HTTP 400 (invalid_redirect_uri: …)". */
export function answered(probe: Probe): string {
  const error = opErrorText(probe);
  return `answered HTTP ${probe.status}${error ? ` (${error})` : ''}`;
}
