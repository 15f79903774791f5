/**
 * The login and consent forms read their CSRF state at the same time as oidc-provider reads the
 * interaction: one round trip to the store (Redis) instead of two in a row. Shown without timing:
 * the store holds the interaction's read back until the state's read has been asked for too (or
 * 500 ms pass), and says which came first.
 */
import { memoryAdapter, type OpStore } from '@openid-express/op';
import type { Adapter } from 'oidc-provider';
import { startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE } from './support/op-server.js';

let gating = false;
const seen: string[] = [];
let stateAsked: () => void = () => undefined;
let stateAskedAlready = false;

function gatedStore(): OpStore {
  const mem = memoryAdapter();
  const wrap = (name: string, adapter: Adapter): Adapter => new Proxy(adapter, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== 'find' || typeof value !== 'function') return value;
      return async (id: string) => {
        if (gating && name === 'OpInteractionState') {
          seen.push('state asked');
          stateAskedAlready = true;
          stateAsked();
        }
        if (gating && name === 'Interaction') {
          const asked = new Promise<string>((resolve) => {
            if (stateAskedAlready) resolve('state asked first');
            stateAsked = () => resolve('state asked first');
          });
          seen.push(await Promise.race([asked, new Promise<string>((resolve) => setTimeout(() => resolve('interaction answered alone'), 500))]));
        }
        const found = await value.call(target, id);
        if (name === 'Interaction') stateAskedAlready = false;
        return found;
      };
    },
  });
  return { ...mem, adapterFor: (name: string) => wrap(name, mem.adapterFor(name)) };
}

describe('reads of a sign-in form', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(gatedStore());
  });
  afterAll(() => f.op.close());

  test('the login page and its POST ask for the form state while the interaction is being read', async () => {
    const browser = f.browser();
    const auth = await f.authorization();
    gating = true;
    try {
      const page = await browser.open(auth.url);
      expect(page.status).toBe(200);
      expect(seen).toContain('state asked first');
      expect(seen).not.toContain('interaction answered alone');
      seen.length = 0;
      const form = page.forms.find((x) => x.action.includes('/login'))!;
      expect(form).toBeDefined();
      const done = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      expect(done.status).toBeLessThan(500);
      expect(seen.filter((s) => s !== 'state asked')[0]).toBe('state asked first');
    } finally {
      gating = false;
      seen.length = 0;
    }
  });
});
