/**
 * A REAL oidc-provider (v9) with dynamic client registration enabled (RFC 7591), behind a small
 * WebFinger route (RFC 7033) that names it as the issuer of its users: the OP an RP meets when it
 * only knows "alice@host". Its users are already signed in: the interaction route finishes login
 * and consent at once (test-only).
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import Provider, { type Configuration } from 'oidc-provider';
import { listen, type Listening } from './common.js';
import { privateJwk } from '../../../../test/support/private-jwk.js';

const ISSUER_REL = 'http://openid.net/specs/connect/1.0/issuer';

export interface DynamicOpOptions {
  /** Local parts WebFinger knows (alice → acct:alice@host). Default ['alice']. */
  users?: string[];
  /** Require this initial access token for registration. Default: open registration. */
  initialAccessToken?: string;
  /** Offer back-channel logout (with `sid`), as most OPs do. Default false. */
  backchannelLogout?: boolean;
}

export interface DynamicOp extends Listening {
  issuer: string;
  /** "host:port", the part after "@" in identifiers. */
  host: string;
  provider: Provider;
  /** Registration requests received (count = how many clients were registered). */
  registrations: number;
  /** WebFinger resources asked for. */
  webfingerRequests: string[];
}

export async function startDynamicOp(options: DynamicOpOptions = {}): Promise<DynamicOp> {
  const users = new Set(options.users ?? ['alice']);
  const app = express();
  const op = { registrations: 0, webfingerRequests: [] } as unknown as DynamicOp;

  app.get('/.well-known/webfinger', (req, res) => {
    const resource = String(req.query.resource ?? '');
    op.webfingerRequests.push(resource);
    // acct:alice@host, or a URL whose path is the user: https://host/alice
    const local = /^acct:([^@]+)@/.exec(resource)?.[1] ?? /^https?:\/\/[^/]+\/([^/?#]+)$/.exec(resource)?.[1];
    if (!local || !users.has(local)) return void res.status(404).end();
    res.type('application/jrd+json').json({ subject: resource, links: [{ rel: ISSUER_REL, href: op.issuer }] });
  });
  app.use('/reg', (req, _res, next) => {
    if (req.method === 'POST') op.registrations += 1;
    next();
  });

  // The listening port is known only after listen(): mount the provider lazily.
  let provider: Provider | undefined;
  app.get('/interaction/:uid', (req, res, next) => void finishInteraction(provider!, req, res).catch(next));
  app.use((req, res) => provider!.callback()(req, res));
  const listening = await listen(app);
  provider = new Provider(listening.url, configuration(options, users));
  return Object.assign(op, listening, { issuer: listening.url, host: new URL(listening.url).host, provider });
}

function signingKey(): Record<string, unknown> {
  return { ...privateJwk(), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

function configuration(options: DynamicOpOptions, users: Set<string>): Configuration {
  return {
    features: {
      registration: {
        enabled: true,
        ...(options.initialAccessToken ? { initialAccessToken: options.initialAccessToken } : {}),
      },
      // RFC 7592: read (which registration alone allows), update and delete
      registrationManagement: { enabled: true },
      devInteractions: { enabled: false },
      ...(options.backchannelLogout ? { backchannelLogout: { enabled: true } } : {}),
    },
    routes: { registration: '/reg' },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['dynamic-op-test-cookie-key'] },
    jwks: { keys: [signingKey() as never] },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
    findAccount: (_ctx, sub) =>
      users.has(sub)
        ? { accountId: sub, claims: () => ({ sub, name: `${sub[0].toUpperCase()}${sub.slice(1)}`, email: `${sub}@example.org`, email_verified: true }) }
        : undefined,
  };
}

/** Test-only: the user "alice" is signed in and consents to whatever is asked. */
async function finishInteraction(provider: Provider, req: express.Request, res: express.Response): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const accountId = 'alice';
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? (await provider.Grant.find(details.grantId))!
    : new provider.Grant({ accountId, clientId: details.params.client_id as string });
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
