/**
 * ✘ only when the RP itself cannot use the OP's metadata (`relyingParty.providerInfo(name)` fails) for a
 * reason the discovery, issuer and https checks did not already show.
 */
import { at, fail, type CheckResult, type ProviderContext } from './types.js';

export function checkMetadata(ctx: ProviderContext): CheckResult | undefined {
  if (!ctx.configError) return undefined;
  return fail(
    `the RP could not set up provider "${ctx.name}": ${ctx.configError}`,
    `check ${at(ctx)} (issuer or providerInfo, clientId, the algorithms configured) against the OP's metadata`,
  );
}
