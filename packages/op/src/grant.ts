import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { finishInteraction } from './finish.js';
import type { ConsentItem } from './views/consent.js';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Confirm who you are (your account identifier)',
  profile: 'See your basic profile: name, username, picture',
  email: 'See your email address',
  address: 'See your postal address',
  phone: 'See your phone number',
  offline_access: 'Keep access while you are not using it',
};

const CLAIM_WORDS: Record<string, string> = {
  sub: 'your account identifier', name: 'your full name', given_name: 'your first name',
  family_name: 'your last name', middle_name: 'your middle name', nickname: 'your nickname',
  preferred_username: 'your username', profile: 'your profile page', picture: 'your picture',
  website: 'your website', gender: 'your gender', birthdate: 'your birth date', zoneinfo: 'your time zone',
  locale: 'your language', updated_at: 'when your profile changed', email: 'your email address',
  email_verified: 'whether your email is verified', address: 'your postal address',
  phone_number: 'your phone number', phone_number_verified: 'whether your phone number is verified',
};

/** The scopes and claims the consent screen lists, in plain words (what is asked and not yet granted). */
export function consentItems(details: Details): { scopes: ConsentItem[]; claims: ConsentItem[] } {
  const d = details.prompt.details as {
    missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
  };
  // a scope asked of a resource (features.resourceIndicators) and also known to the OP is listed once, with its resource
  const forResources = new Set(Object.values(d.missingResourceScopes ?? {}).flat());
  const scopes: ConsentItem[] = (d.missingOIDCScope ?? []).filter((name) => !forResources.has(name)).map((name) => ({
    name, description: SCOPE_WORDS[name] ?? `Use the "${name}" permission`,
  }));
  for (const [resource, list] of Object.entries(d.missingResourceScopes ?? {})) {
    for (const name of list) scopes.push({ name, description: `Use the "${name}" permission at ${resource}` });
  }
  const claims = (d.missingOIDCClaims ?? [])
    .filter((name) => !['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss'].includes(name))
    .map((name) => ({ name, description: CLAIM_WORDS[name] ?? name }));
  if (scopes.length === 0 && claims.length === 0) {
    // consent asked again (prompt=consent) for what was granted before: show what the request asks
    // (only then: a request that adds only a claim lists that claim, not the scopes granted before)
    for (const name of String(details.params.scope ?? '').split(' ').filter(Boolean)) {
      scopes.push({ name, description: SCOPE_WORDS[name] ?? `Use the "${name}" permission` });
    }
  }
  return { scopes, claims };
}

/**
 * The OP session's Grant for the client now, when it is still there and of the same account. An
 * interaction knows only the Grant of when it started: two tabs at the consent screen at once each
 * made a new one, and the second became the session's, so oidc-provider's session binding then
 * refused the first tab's code or tokens (invalid_grant, invalid_token). Adding to the session's
 * Grant keeps both tabs' tokens bound to it.
 */
async function sessionGrant(provider: Provider, details: Details, clientId: string) {
  const uid = details.session?.uid;
  const session = uid ? await provider.Session.findByUid(uid) : undefined;
  const grantId = session?.accountId === details.session?.accountId ? session?.grantIdFor(clientId) : undefined;
  const grant = grantId ? await provider.Grant.find(grantId) : undefined;
  return grant?.accountId === details.session?.accountId && grant?.clientId === clientId ? grant : undefined;
}

/** Records consent for everything the interaction asks for in oidc-provider's Grant, then resumes it. */
export async function finishConsent(provider: Provider, req: Request, res: Response, details: Details): Promise<void> {
  const d = details.prompt.details as {
    missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
  };
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id as string;
  // a new Grant is named after its interaction: a consent posted twice at the same moment (both posts read the
  // interaction undecided, on two instances) saves the one Grant twice, not a second one left behind unused
  const grant = (await sessionGrant(provider, details, clientId))
    || (details.grantId && (await provider.Grant.find(details.grantId)))
    || Object.assign(new provider.Grant({ accountId, clientId }), { jti: details.uid });
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  await finishInteraction(provider, req, res, details, { consent: { grantId } }, true);
}

/**
 * oidc-provider's `loadExistingGrant` (the consent's Grant, else the OP session's for the client), with
 * one case more: a consent whose Grant is not the session's (two tabs allowed at the same moment,
 * both before either resumed, so `sessionGrant` found none) is added to the session's Grant, which
 * the other tab's code is bound to already, instead of replacing it (that refused the other tab's code).
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const clientId = ctx.oidc.client!.clientId;
  const current = ctx.oidc.session!.grantIdFor(clientId);
  const decided = ctx.oidc.result?.consent?.grantId;
  const grantId = decided || current;
  const grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
  if (!grant || !decided || !current || decided === current) return grant;
  const kept = await ctx.oidc.provider.Grant.find(current);
  if (!kept || kept.accountId !== grant.accountId || kept.clientId !== clientId) return grant;
  const scope = grant.getOIDCScope();
  if (scope) kept.addOIDCScope(scope);
  kept.addOIDCClaims(grant.getOIDCClaims());
  for (const resource of Object.keys(grant.resources ?? {})) kept.addResourceScope(resource, grant.getResourceScope(resource));
  await kept.save();
  return kept;
}
