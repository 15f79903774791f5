// The recorder: a `customFetch` for the provider entry (openid-client sends every request to the
// OP through it) that keeps each request and response, masked, for the step printer.
import {
  clientAuthentication, interestingRequestHeaders, interestingResponseHeaders, maskFields, paramsObject, responseBody,
} from './wire.mjs';

/** `fetch` as it was before any story code ran: the scripted user agent and the harness use it unrecorded. */
export const plainFetch = globalThis.fetch.bind(globalThis);

/**
 * A recorder: `recorder.fetch` is the `customFetch` to give the provider entry; exchanges go to the
 * sink set with `recorder.into(list)` (the current step's list).
 *
 * @example
 *   const recorder = createRecorder();
 *   oidc({ issuer, clientId, clientSecret, customFetch: recorder.fetch });
 */
export function createRecorder() {
  let sink;
  const record = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const exchange = { request: describeRequest(method, url, headers, init.body) };
    sink?.push(exchange);
    let response;
    try {
      response = await plainFetch(input, init);
    } catch (err) {
      exchange.response = { error: err.message };
      throw err;
    }
    const text = await response.clone().text();
    const { body, jwts } = responseBody(text, response.headers.get('content-type'), url);
    exchange.response = {
      status: response.status,
      ...nonEmpty('headers', interestingResponseHeaders(response.headers)),
      ...(body === undefined ? {} : { body }),
      ...nonEmpty('jwts', jwts),
    };
    return response;
  };
  return {
    /** The `customFetch` (openid-client's signature, also a plain `fetch`). */
    fetch: record,
    /** Where the next exchanges go (the step's list), or nowhere. */
    into(list) {
      sink = list;
    },
    /**
     * Runs `fn` with the global `fetch` recorded too: for requests the RelyingParty makes without
     * a customFetch hook (a resource server called with `fetchResource`, a dynamic OP's registration).
     */
    async withGlobalFetch(fn) {
      const previous = globalThis.fetch;
      globalThis.fetch = record;
      try {
        return await fn();
      } finally {
        globalThis.fetch = previous;
      }
    },
  };
}

function describeRequest(method, url, headers, rawBody) {
  let form;
  let json;
  if (rawBody instanceof URLSearchParams) form = paramsObject(rawBody);
  else if (typeof rawBody === 'string') {
    const type = headers.get('content-type') ?? '';
    if (/json/.test(type)) {
      try {
        json = JSON.parse(rawBody);
      } catch {
        json = rawBody;
      }
    } else form = paramsObject(new URLSearchParams(rawBody));
  }
  const auth = clientAuthentication(headers, form);
  const { headers: shown, jwts: headerJwts } = interestingRequestHeaders(headers);
  const request = { method, url: url.href, ...(auth ? { auth } : {}), ...nonEmpty('headers', shown) };
  let jwts = headerJwts;
  if (form) {
    const { client_secret, client_assertion_type, ...rest } = form; // shown as the client authentication above
    void client_secret;
    void client_assertion_type;
    const masked = maskFields(rest);
    request.form = masked.body;
    jwts = { ...jwts, ...masked.jwts };
  } else if (json !== undefined) {
    const masked = typeof json === 'object' && json ? maskFields(json) : { body: json, jwts: {} };
    request.json = masked.body;
    jwts = { ...jwts, ...masked.jwts };
  }
  return { ...request, ...nonEmpty('jwts', jwts) };
}

/** `{ [name]: value }` when value has keys, else nothing (keeps the JSON lines short). */
export function nonEmpty(name, value) {
  return value && Object.keys(value).length > 0 ? { [name]: value } : {};
}
