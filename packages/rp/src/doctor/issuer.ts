/** ✔ the `issuer` in the OP's discovery document is the configured `issuer` (openid-client refuses any other). */
import { at, fail, meta, pass, skip, type CheckResult, type ProviderContext } from './types.js';

/** Issuers compare as URLs (a bare origin and the same origin with "/" are one issuer), as openid-client compares them. */
function sameIssuer(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

export function checkIssuer(ctx: ProviderContext): CheckResult {
  const configured = ctx.p.issuer;
  if (!ctx.discovery) {
    const named = meta(ctx.p.providerInfo, 'issuer');
    if (!configured || !named) return skip(`static ${at(ctx)}.providerInfo is used: no discovery document to compare with`);
    return sameIssuer(configured, named)
      ? pass(`${at(ctx)}.providerInfo.issuer is ${named}`)
      : fail(`${at(ctx)}.issuer is "${configured}" but ${at(ctx)}.providerInfo.issuer is "${named}"`, `use one issuer: the one the OP puts in its ID tokens ("iss")`);
  }
  const found = meta(ctx.discovery.metadata, 'issuer');
  if (!ctx.discovery.metadata) return skip('no discovery document (see discovery)');
  if (!found) return fail(`the discovery document at ${ctx.discovery.url} has no "issuer"`, 'the OP must name its issuer in its discovery document: ask its operator');
  if (sameIssuer(found, configured!)) return pass(`the OP names itself ${found}, as configured`);
  if (ctx.p.allowIssuerMismatch) return pass(`the OP names itself "${found}", not "${configured}": accepted because ${at(ctx)}.allowIssuerMismatch is set`);
  return fail(
    `the discovery document at ${ctx.discovery.url} names issuer "${found}", but ${at(ctx)}.issuer is "${configured}" (openid-client refuses the mismatch)`,
    `set ${at(ctx)}.issuer to "${found}"; if that is the OP's internal URL, configure the OP's public URL at the OP (behind a proxy: its issuer / trust proxy setting)`,
  );
}
