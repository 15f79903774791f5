import debug from 'debug';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type Provider from 'oidc-provider';
import { errors, type AccessToken, type ClientCredentials, type TokenEndpointGrantContext } from 'oidc-provider';
import { bindToProof, dpopProof } from './dpop-binding.js';
import type { AccountStore } from '../accounts.js';
import type { OpResourceIndicators } from '../options.js';
import { findResource, resourceServerInfo } from '../resources.js';

const log = debug('openid-express:op');

/** The grant type of RFC 8693 token exchange. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 token type identifiers this grant takes and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope'];

/** What the policy is told about the token being exchanged. */
export interface TokenExchangeSubject {
  /** The account the subject token speaks for (its `sub`). */
  sub: string;
  /** The client the subject token was issued to. */
  clientId: string;
  /** Its scopes. */
  scope: string[];
  /** Its audience (`aud`) when it was issued for a resource. */
  audience?: string | string[];
  /** How it was presented: an opaque token found in the store, or a JWT verified with the OP's keys. */
  format: 'opaque' | 'jwt';
  /** Its `act` claim when it came from an earlier exchange (who acted before). */
  act?: Record<string, unknown>;
}

/** What `features.tokenExchange.policy` decides on. */
export interface TokenExchangeRequest {
  /** The client asking (its registered metadata, without its secret): it becomes the actor (`act.sub`) of the new token. */
  client: { clientId: string; metadata: Record<string, unknown> };
  subject: TokenExchangeSubject;
  /** The resource the new token is for (a key of `features.resourceIndicators.resources`). */
  resource: string;
  /** The new token's `aud`: the resource's `audience`, else the resource itself. */
  audience: string;
  /** The scopes the new token would carry (a subset of the subject token's). */
  scope: string[];
}

/**
 * Whether a token exchange may happen. Anything but `true` refuses it with `access_denied`; a throw is
 * a `server_error`.
 *
 * @example
 * const policy: TokenExchangePolicy = ({ client, resource }) => client.clientId === 'gateway' && resource === 'https://backend.example.com';
 */
export type TokenExchangePolicy = (request: TokenExchangeRequest) => boolean | Promise<boolean>;

/** What the grant needs. */
export interface TokenExchangeDeps {
  resources: OpResourceIndicators;
  policy: TokenExchangePolicy;
  accounts: AccountStore;
  /** The OP's public signing keys, to verify JWT subject tokens. */
  jwks: JSONWebKeySet;
  /** `ttl.AccessToken`: the new token's lifetime unless its resource has `accessTokenTTL`. */
  accessTokenTTL: number;
}

type Subject = TokenExchangeSubject & { exp: number };

/** Claims the next save of an exchanged token adds (read by the OP's `extraTokenClaims`). */
const EXCHANGE_CLAIMS = new WeakMap<object, Record<string, unknown>>();

/**
 * The claims an access token gets from a token exchange (`act`), for oidc-provider's `extraTokenClaims`.
 *
 * @example
 * extraTokenClaims: async (ctx, token) => exchangeClaims(token)
 */
export function exchangeClaims(token: AccessToken | ClientCredentials): Record<string, unknown> | undefined {
  return EXCHANGE_CLAIMS.get(token);
}

function invalidGrant(description: string): errors.InvalidGrant {
  return Object.assign(new errors.InvalidGrant(), { error_description: description });
}

const list = (value: unknown): string[] => (value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const now = () => Math.floor(Date.now() / 1000);

/** An access token this OP issued to a user, still valid: a JWT verified with the OP's keys, or an opaque one found in the store. */
async function findSubject(provider: Provider, deps: TokenExchangeDeps, value: string): Promise<Subject | undefined> {
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(value)) {
    const { payload } = await jwtVerify(value, createLocalJWKSet(deps.jwks), { issuer: provider.issuer, typ: 'at+jwt' }).catch(() => ({ payload: undefined }));
    if (!payload || typeof payload.sub !== 'string' || typeof payload.client_id !== 'string' || typeof payload.exp !== 'number') return undefined;
    // a client credentials token speaks for its client, not for a user
    if (payload.sub === payload.client_id) return undefined;
    return {
      sub: payload.sub, clientId: payload.client_id, exp: payload.exp, format: 'jwt',
      scope: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      ...(payload.aud === undefined ? {} : { audience: payload.aud }),
      ...(isObject(payload.act) ? { act: payload.act } : {}),
    };
  }
  const token = await provider.AccessToken.find(value);
  if (!token || token.isExpired || !token.accountId || !token.clientId || !token.exp) return undefined;
  if (token.grantId) {
    // the consent behind it was revoked (or expired): so is the token
    const grant = await provider.Grant.find(token.grantId);
    if (!grant || grant.isExpired || grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;
  }
  return {
    sub: token.accountId, clientId: token.clientId, exp: token.exp, format: 'opaque', scope: [...token.scopes].filter(Boolean),
    ...(token.aud === undefined ? {} : { audience: token.aud }),
    ...(isObject(token.extra?.act) ? { act: token.extra.act } : {}),
  };
}

/** The one configured resource the request names (`resource` and/or `audience`), else `defaultResource`. */
function targetOf(deps: TokenExchangeDeps, params: Record<string, unknown>): string {
  const found = new Set<string>();
  for (const resource of list(params.resource)) {
    const hit = findResource(deps.resources, resource);
    if (!hit) throw new errors.InvalidTarget(`unknown resource "${resource.slice(0, 200)}"`);
    found.add(hit[0]);
  }
  for (const audience of list(params.audience)) {
    const hit = findResource(deps.resources, audience, true);
    if (!hit) throw new errors.InvalidTarget(`unknown audience "${audience.slice(0, 200)}"`);
    found.add(hit[0]);
  }
  if (found.size === 0 && deps.resources.defaultResource) found.add(deps.resources.defaultResource);
  if (found.size === 0) throw new errors.InvalidTarget('name the resource (or audience) the new token is for');
  if (found.size > 1) throw new errors.InvalidTarget('one resource per token exchange');
  return [...found][0]!;
}

/** The new token's scopes: those asked (all within the subject token's and the resource's), else their intersection. */
function scopeOf(params: Record<string, unknown>, subject: Subject, resource: string, offered: string[]): string[] {
  const held = new Set(subject.scope);
  if (typeof params.scope === 'string' && params.scope.trim()) {
    const asked = [...new Set(params.scope.split(' ').filter(Boolean))];
    const wider = asked.filter((s) => !held.has(s));
    if (wider.length) throw new errors.InvalidScope('the requested scope exceeds the subject token\'s', wider.join(' '));
    const foreign = asked.filter((s) => !offered.includes(s));
    if (foreign.length) throw new errors.InvalidScope(`not a scope of ${resource} for this client`, foreign.join(' '));
    return asked;
  }
  const scope = offered.filter((s) => held.has(s));
  if (scope.length === 0) throw new errors.InvalidScope(`the subject token carries none of the scopes of ${resource}`, offered.join(' '));
  return scope;
}

/**
 * RFC 8693 token exchange at the token endpoint: a client trades a user's access token issued by this
 * OP (`subject_token`) for one for a configured resource, with the same or fewer scopes and an `act`
 * claim naming the client, if `policy` allows. Errors per RFC 8693 §2.2.2: `invalid_request`,
 * `invalid_grant` (subject token unknown, foreign, expired or revoked), `invalid_target`,
 * `invalid_scope` (wider than the subject token), `access_denied` (policy).
 *
 * @example
 * registerTokenExchange(provider, { resources, policy, accounts, jwks, accessTokenTTL: 3600 });
 */
export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx: TokenEndpointGrantContext) => {
    const params = ctx.oidc.params as Record<string, unknown>;
    const { client } = ctx.oidc;
    const subjectToken = params.subject_token;
    if (typeof subjectToken !== 'string' || !subjectToken) throw new errors.InvalidRequest('missing required parameter \'subject_token\'');
    const type = params.subject_token_type;
    if (typeof type !== 'string' || !type) throw new errors.InvalidRequest('missing required parameter \'subject_token_type\'');
    const proof = await dpopProof(provider, ctx);
    if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TYPE) throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
      throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
    }
    const requested = params.requested_token_type;
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);

    const subject = await findSubject(provider, deps, subjectToken);
    if (!subject) throw invalidGrant('subject_token is not an active access token of this issuer for a user (unknown, expired or revoked)');
    if (!(await deps.accounts.findById(subject.sub))) throw invalidGrant('the subject token\'s account no longer exists');

    const resource = targetOf(deps, params);
    const info = resourceServerInfo(deps.resources, resource, client);
    const scope = scopeOf(params, subject, resource, info.scope.split(' ').filter(Boolean));
    const audience = info.audience ?? resource;
    const { exp, ...shown } = subject;
    const { client_secret: _secret, ...metadata } = client.metadata() as Record<string, unknown>;
    const allowed = await deps.policy({
      client: { clientId: client.clientId, metadata },
      subject: shown, resource, audience, scope,
    });
    if (allowed !== true) {
      log('token exchange refused by the policy (client %s, resource %s)', client.clientId, resource);
      throw new errors.AccessDenied('the token exchange policy does not allow this exchange');
    }

    const remaining = exp - now();
    if (remaining < 1) throw invalidGrant('subject_token is expired');
    const token = new provider.AccessToken({
      accountId: subject.sub, client, gty: 'token_exchange', scope: scope.join(' '),
      grantId: undefined as unknown as string, // no consent of its own: it lives on the subject token's, capped below
      expiresIn: Math.min(info.accessTokenTTL ?? deps.accessTokenTTL, remaining),
    });
    token.resourceServer = new provider.ResourceServer(resource, info);
    EXCHANGE_CLAIMS.set(token, { act: { sub: client.clientId, ...(subject.act ? { act: subject.act } : {}) } });
    await bindToProof(provider, ctx, proof, token);
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    log('token exchange: client %s for resource %s', client.clientId, resource);
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, PARAMETERS, ['audience', 'resource']);
}
