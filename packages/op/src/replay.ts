import debug from 'debug';
import Provider, { errors, type Adapter, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { GRANTABLE } from './adapters/models.js';
import { adapterMethods } from './bounded-store.js';
import type { OpStore } from './adapters/types.js';

const log = debug('openid-express:op');

/** Records a token request redeems once: presented again, their grant is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2). */
const GRANT_SOURCES: ReadonlySet<string> = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

/** The grant of each record a request found, by request (oidc-provider's context) and record id. */
const grantsFound = new WeakMap<object, Map<string, string>>();

/**
 * `adapter`, revoking the grant when the store refuses to consume a code or refresh token that
 * another request consumed first. oidc-provider revokes the grant of a code or refresh token it
 * finds already consumed. Two requests that find it unspent at the same moment (two instances, one
 * code) both pass that check. The store refuses the second consume (`invalid_grant`), and without
 * this the first one's tokens stayed valid: whether a replay revoked anything depended on timing.
 * The grant is revoked as oidc-provider does (every record of it, and the grant itself when
 * `revokeGrantPolicy` allows), and `grant.revoked` is emitted.
 */
export function revokingReplays(model: string, adapter: Adapter, store: OpStore, policy: Configuration['revokeGrantPolicy']): Adapter {
  if (!GRANT_SOURCES.has(model)) return adapter;
  const find = adapter.find.bind(adapter);
  const consume = adapter.consume.bind(adapter);
  // every other method as the store has it
  const wrapped = adapterMethods(adapter, (_name, method) => method);
  wrapped.find = async (id: string) => {
    const found: AdapterPayload | undefined = (await find(id)) ?? undefined;
    const ctx = Provider.ctx;
    if (ctx && typeof found?.grantId === 'string') {
      let seen = grantsFound.get(ctx);
      if (!seen) grantsFound.set(ctx, (seen = new Map()));
      seen.set(id, found.grantId);
    }
    return found;
  };
  wrapped.consume = async (id: string) => {
    try {
      await consume(id);
    } catch (err) {
      const ctx = Provider.ctx;
      const grantId = ctx && grantsFound.get(ctx)?.get(id);
      if (err instanceof errors.InvalidGrant && grantId) {
        log('a %s was presented by two requests at once: revoking its grant', model);
        await revokeGrant(ctx, grantId, store, policy);
      }
      throw err;
    }
  };
  return wrapped as unknown as Adapter;
}

async function revokeGrant(ctx: KoaContextWithOIDC, grantId: string, store: OpStore, policy: Configuration['revokeGrantPolicy']): Promise<void> {
  const revokeGrant = policy ? Boolean(await policy(ctx)) : true;
  await Promise.all([
    ...[...GRANTABLE].map((model) => store.adapterFor(model).revokeByGrantId(grantId)),
    revokeGrant ? store.adapterFor('Grant').destroy(grantId) : undefined,
  ]);
  if (revokeGrant) ctx.oidc.provider.emit('grant.revoked', ctx, grantId);
}
