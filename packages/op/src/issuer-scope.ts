/**
 * Records of one issuer only. Two OPs (two `op()` of a multi-tenant deployment, or two apps) whose
 * stores share one namespace — one Redis with the same `prefix`, or one `memoryAdapter()` — would
 * otherwise take each other's records: a token issued by tenant A would be active at tenant B's
 * userinfo and introspection, a session of A would sign in at B. Every record is written with the
 * issuer that wrote it, and a record of another issuer is not found (as if it did not exist); a
 * record written before this tag existed is taken as before. Finding one is warned about, as it
 * means the stores are shared by mistake: what to fix is a prefix per OP.
 */
import debug from 'debug';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { adapterMethods } from './bounded-store.js';
import { warnAtMostHourly } from './hourly-warning.js';

const log = debug('openid-express:op');

/** The payload member that names the issuer a record belongs to (never seen by oidc-provider). */
export const ISSUER_TAG = 'openid-express:iss';

type Tagged = AdapterPayload & { [ISSUER_TAG]?: string };

function warnShared(issuer: string, other: string, model: string): void {
  warnAtMostHourly(`shared-namespace ${issuer} ${other}`, `the OP at ${issuer} was asked for a record (${model}) of the OP at ${JSON.stringify(other.slice(0, 200))}: `
    + 'both keep their records in one store namespace (one Redis with the same prefix, or one memoryAdapter()). It was refused, as every record of '
    + 'another issuer is; give each OP its own, e.g. redisAdapter(redis, { prefix: \'tenant-a:\' }).');
}

/** `adapter` (of model `model`), whose records carry `issuer` and are found only by that issuer. */
export function issuerScoped(issuer: string, model: string, adapter: Adapter): Adapter {
  const wrapped = adapterMethods(adapter, (_name, method) => method);
  const own = (found: Tagged | undefined | void): AdapterPayload | undefined => {
    if (!found) return undefined;
    const tag = found[ISSUER_TAG];
    if (tag === undefined) return found; // written before records were tagged
    if (tag !== issuer) {
      log('%s of issuer %s not taken: this OP is %s', model, JSON.stringify(String(tag).slice(0, 200)), issuer);
      warnShared(issuer, String(tag), model);
      return undefined;
    }
    const { [ISSUER_TAG]: _tag, ...payload } = found;
    return payload;
  };
  wrapped.upsert = (id: string, payload: AdapterPayload, expiresIn: number) => adapter.upsert.call(adapter, id, { ...payload, [ISSUER_TAG]: issuer }, expiresIn);
  wrapped.find = async (id: string) => own(await adapter.find.call(adapter, id));
  wrapped.findByUid = async (uid: string) => own(await adapter.findByUid.call(adapter, uid));
  wrapped.findByUserCode = async (userCode: string) => own(await adapter.findByUserCode.call(adapter, userCode));
  return wrapped as unknown as Adapter;
}
