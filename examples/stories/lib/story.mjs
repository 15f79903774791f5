// The story harness: starts the OP and the client's site, builds the RelyingParty with the
// recorder as its customFetch, runs the story's sequence step by step and prints each step.
// A story passes (exit 0) only when every response was verified.
import { pathToFileURL } from 'node:url';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { RelyingParty, oidc } from '@openid-express/rp';
import { createRecorder, nonEmpty, plainFetch } from './recorder.mjs';
import { ALICE, startClientSite, startOP } from './servers.mjs';
import { UserAgent, signIn } from './user-agent.mjs';
import { decodeJwt, isJwt, maskFields, paramsObject } from './wire.mjs';
import { jsonPrinter, textPrinter } from './print.mjs';

/** The provider name of the OP in the RelyingParty (its redirect_uri is {baseURL}/auth/callback/op). */
export const OP = 'op';

/** Thrown to stop a story after a step that failed (the step is printed already). */
class StepFailed extends Error {}

/**
 * A story: `name` (the command), `seed` (IdPyOIDC demo), `title`, `shows` (one line), and
 * - `server({ site, redirectUri, note })`: the op() options of the story (clients, features …);
 * - `client({ site, issuer })`: the oidc() provider entry options (clientId, clientSecret …);
 * - optional `relyingParty`: more RelyingParty options (e.g. `keys`), `site(app, t)`: routes on the client's site;
 * - `flow(t)`: the sequence, as `await t.step(name, async (s) => …)`.
 */
export function defineStory(story) {
  return story;
}

/**
 * Runs `story`, printing as text or JSON lines; resolves to true when every step verified.
 *
 * @example
 *   const ok = await runStory(story, { json: true });
 */
export async function runStory(story, { json = false, write } = {}) {
  const printer = json ? jsonPrinter(write) : textPrinter(write);
  const recorder = createRecorder();
  const serverNotes = [];
  let site;
  let op;
  const steps = [];
  try {
    site = await startClientSite();
    const t = { site: site.origin, alice: ALICE, OP, recorder };
    story.site?.(site.app, t);
    const redirectUri = `${site.origin}/auth/callback/${OP}`;
    op = await startOP(story.server({ site: site.origin, redirectUri, note: (text) => serverNotes.push(text) }));
    const metadata = await (await plainFetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    const jwks = createLocalJWKSet(await (await plainFetch(metadata.jwks_uri)).json());
    const clientOptions = story.client({ site: site.origin, issuer: op.issuer });
    const relyingParty = new RelyingParty({
      baseURL: site.origin,
      ...story.relyingParty?.({ site: site.origin, issuer: op.issuer }),
      providers: clientOptions === null ? {} : {
        [OP]: oidc({ issuer: op.issuer, allowInsecureRequests: true, customFetch: recorder.fetch, ...clientOptions }),
      },
    });
    Object.assign(t, { issuer: op.issuer, opOrigin: op.origin, metadata, jwks, relyingParty, redirectUri });
    printer.start({ name: story.name, seed: story.seed, title: story.title, shows: story.shows, issuer: op.issuer, client: site.origin, warnings: op.warnings });

    t.step = async (name, fn) => {
      const record = {
        story: story.name, n: steps.length + 1, name, opOrigin: op.origin, notes: [], exchanges: [], checks: [], ok: true,
      };
      steps.push(record);
      recorder.into(record.exchanges);
      serverNotes.length = 0;
      const s = stepContext(record, t);
      try {
        return await fn(s);
      } catch (err) {
        record.ok = false;
        record.checks.push({ what: `unexpected error: ${err.code ? `${err.code}${err.opError ? ` (${err.opError})` : ''}: ` : ''}${err.message}`, ok: false });
        throw new StepFailed(err.message, { cause: err });
      } finally {
        recorder.into(undefined);
        if (record.checks.length === 0) record.checks.push({ what: 'nothing was verified in this step', ok: false });
        if (serverNotes.length) record.atOP = [...serverNotes];
        record.ok = record.ok && record.checks.every((c) => c.ok);
        const { opOrigin, ...rest } = record;
        printer.step(json ? compact(rest) : record);
        void opOrigin;
      }
    };
    /** A scripted user agent that stops where the OP sends the browser back to this client. */
    t.userAgent = () => new UserAgent({ stopAt: (url) => url.origin === site.origin });
    await story.flow(t);
  } catch (err) {
    if (!(err instanceof StepFailed)) {
      steps.push({ story: story.name, n: steps.length + 1, name: 'start-up', exchanges: [], checks: [{ what: `could not run: ${err.stack ?? err}`, ok: false }], ok: false });
      printer.step(steps.at(-1));
    }
  } finally {
    await Promise.allSettled([site?.close(), op?.close()]);
  }
  const failed = steps.filter((s) => !s.ok).map((s) => s.name);
  const ok = steps.length > 0 && failed.length === 0;
  printer.end({ story: story.name, name: story.name, ok, steps: steps.length, failed });
  return ok;
}

/** The JSON line of a step: empty lists left out. */
function compact(record) {
  const out = {};
  for (const [k, v] of Object.entries(record)) {
    if (Array.isArray(v) && v.length === 0 && k !== 'checks') continue;
    out[k] = v;
  }
  return out;
}

/** What a step function gets: ways to record checks, front-channel exchanges and the verified result. */
function stepContext(record, t) {
  const s = {
    /** A check made here; `ok` false fails the step (and the story). */
    check(what, ok) {
      record.checks.push({ what, ok: !!ok });
      return !!ok;
    },
    /** What the RelyingParty verified before it returned (it throws otherwise). */
    rpVerified(operation, what) {
      record.checks.push({ what: `${operation} verified ${what}`, ok: true, by: 'RelyingParty' });
    },
    note(text) {
      record.notes.push(text);
    },
    /** The requests recorded in this step so far (masked, as printed). */
    requests: () => record.exchanges.filter((e) => e.request).map((e) => e.request),
    /** The first exchange of this step whose request matches `match(request)`: `{ request, response }`. */
    exchange: (match) => record.exchanges.find((e) => e.request && match(e.request)) ?? {},
    /** The responses recorded in this step so far. */
    responses: () => record.exchanges.filter((e) => e.request && e.response).map((e) => e.response),
    /** The parsed and verified response, as the RelyingParty returned it; tokens in it are cut, JWTs decoded. */
    result(from, value) {
      const { body, jwts } = maskFields(value);
      for (const key of Object.keys(jwts)) body[key] = `${body[key]} (JWT, decoded above)`;
      record.resultFrom = from;
      record.result = body;
    },
    /**
     * Verifies a JWT the OP issued with the OP's published keys (jose): signature, `iss`, `exp`, and
     * `aud` / `typ` when given. Returns its claims; each part is a check.
     */
    async jwt(label, token, expect = {}) {
      if (!isJwt(token)) {
        s.check(`${label} is a JWT`, false);
        return {};
      }
      const { header } = decodeJwt(token);
      try {
        const { payload } = await jwtVerify(token, t.jwks, {
          issuer: t.issuer, ...(expect.audience ? { audience: expect.audience } : {}), ...(expect.typ ? { typ: expect.typ } : {}),
        });
        s.check(`${label}: signature (${header.alg}) by the OP's key kid=${header.kid} from its jwks_uri`, true);
        s.check(`${label}: iss is the OP${expect.typ ? `, typ ${expect.typ}` : ''}, not expired (exp in ${payload.exp - Math.floor(Date.now() / 1000)} s)`, true);
        if (expect.audience) s.check(`${label}: aud is ${JSON.stringify(payload.aud)}, as expected (${expect.audience})`, true);
        return payload;
      } catch (err) {
        s.check(`${label}: ${err.code ?? 'verification'} failed: ${err.message}`, false);
        return decodeJwt(token).claims;
      }
    },
    /**
     * Expects `operation` to be refused by the OP with OAuth error `error` (the RelyingParty's
     * `RpError.opError`); the refusal is the verified outcome of the step.
     */
    async refused(operation, error, what) {
      try {
        await operation;
      } catch (err) {
        const said = err.opError ?? err.code;
        s.check(`${what}: refused with ${said}${err.message ? ` — ${err.message.slice(0, 160)}` : ''}`, said === error);
        return err;
      }
      s.check(`${what}: expected a refusal with ${error}, but it succeeded`, false);
      return undefined;
    },
    /** The authorization request as the browser carries it (query parameters, a request object decoded). */
    authorizationRequest(url, via = 'the user agent carries it to the OP') {
      const u = new URL(url);
      const { body, jwts } = maskFields(paramsObject(u.searchParams));
      record.exchanges.push({ request: { via, method: 'GET', url: `${u.origin}${u.pathname}`, query: body, ...nonEmpty('jwts', jwts) } });
    },
    /** The scripted user's walk through the OP's pages. */
    userAgent(agent) {
      record.exchanges.push({ userAgent: agent.hops });
    },
    /** The authorization response as it reaches the client (redirect query / form_post fields). */
    authorizationResponse(response) {
      const { body, jwts } = maskFields(paramsObject(response.params));
      const via = response.method === 'POST' ? 'form_post: the OP\'s page posts it to the redirect_uri' : 'redirect to the redirect_uri';
      record.exchanges.push({ response: { via, method: response.method, url: response.url, params: body, ...nonEmpty('jwts', jwts) } });
    },
    /** Runs `fn` with the global fetch recorded too (a resource server call, a dynamic OP). */
    withGlobalFetch: (fn) => t.recorder.withGlobalFetch(fn),
  };
  return s;
}

/**
 * The user's part of a code / implicit / hybrid login: the RelyingParty's authorization request,
 * the scripted user agent signing alice in and consenting, and the response reaching the client.
 * Returns `{ request, response }` for `finalize`.
 */
export async function authorize(t, s, { params, provider = OP } = {}) {
  const request = await t.relyingParty.authorizationRequest(provider, { returnTo: '/', ...(params ? { params } : {}) });
  s.authorizationRequest(request.url);
  const agent = t.userAgent();
  const response = await signIn(agent, request.url.href, { login: t.alice.username, password: t.alice.password, redirectUri: t.relyingParty.callbackUrl(provider) });
  s.userAgent(agent);
  s.authorizationResponse(response);
  s.check(`the OP sent the user back to the redirect_uri with state ${response.params.get('state') === request.state ? 'unchanged' : 'CHANGED'}`, response.params.get('state') === request.state);
  if (response.params.has('error')) s.check(`the OP answered ${response.params.get('error')}: ${response.params.get('error_description')}`, false);
  return { request, response };
}

/** Runs `story` when its file is the one node was started with (`node oauth2-cc.mjs [--json]`). */
export async function runIfMain(metaUrl, story) {
  if (!process.argv[1] || pathToFileURL(process.argv[1]).href !== metaUrl) return;
  const ok = await runStory(story, { json: process.argv.includes('--json') });
  process.exitCode = ok ? 0 : 1;
}
