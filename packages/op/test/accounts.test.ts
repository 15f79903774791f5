import { claimsForScope, loginKey, memoryAccounts, OpConfigError, type AccountStore } from '@openid-express/op';
import type { Account } from 'oidc-provider';

const accounts = memoryAccounts([
  { id: 'alice', username: 'Alice', password: 'wonderland', claims: { name: 'Alice', email: 'alice@example.org', email_verified: true, team: 'red' } },
]);

describe('memoryAccounts()', () => {
  test('verifies the right password by username or email, case-insensitively', async () => {
    await expect(accounts.verifyPassword('alice', 'wonderland')).resolves.toBe('alice');
    await expect(accounts.verifyPassword('ALICE@example.org', 'wonderland')).resolves.toBe('alice');
  });

  test('refuses a wrong password and an unknown login alike', async () => {
    await expect(accounts.verifyPassword('alice', 'Wonderland')).resolves.toBeUndefined();
    await expect(accounts.verifyPassword('mallory', 'wonderland')).resolves.toBeUndefined();
    await expect(accounts.verifyPassword('alice', '')).resolves.toBeUndefined();
  });

  test('an unknown login costs a scrypt hash too (no user enumeration by timing)', async () => {
    const time = async (login: string) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 5; i += 1) await accounts.verifyPassword(login, 'nope');
      return Number(process.hrtime.bigint() - start) / 5e6;
    };
    await time('alice'); // warm up
    const [known, unknown] = [await time('alice'), await time('mallory')];
    // without the dummy hash an unknown login answers in microseconds, known ones in tens of ms
    expect(unknown).toBeGreaterThan(known / 5);
  });

  test('does not keep the clear-text password', () => {
    const list = [{ id: 'bob', username: 'bob', password: 'builder-secret' }];
    const store = memoryAccounts(list);
    expect(JSON.stringify(store)).not.toContain('builder-secret');
  });

  test('releases claims by scope', async () => {
    await expect(accounts.claims('alice', 'openid')).resolves.toEqual({});
    await expect(accounts.claims('alice', 'openid email')).resolves.toEqual({ email: 'alice@example.org', email_verified: true });
    await expect(accounts.claims('alice', 'openid profile')).resolves.toEqual({ name: 'Alice', team: 'red' });
    await expect(accounts.claims('nobody', 'openid profile')).resolves.toEqual({});
  });

  test('each answer for a scope is a fresh object, and many scopes still answer right', async () => {
    const first = await accounts.claims('alice', 'openid email');
    first.email = 'mallory@example.org'; // a caller that changes what it got...
    delete first.email_verified;
    // ...changes neither the account nor the next answer (each answer is a copy of what the scope releases)
    await expect(accounts.claims('alice', 'openid email')).resolves.toEqual({ email: 'alice@example.org', email_verified: true });
    for (let i = 0; i < 200; i += 1) {
      const scope = `openid s${i}${i % 2 ? ' email' : ''}`;
      await expect(accounts.claims('alice', scope)).resolves.toEqual(i % 2 ? { email: 'alice@example.org', email_verified: true } : {});
    }
    await expect(accounts.claims('alice', 'profile email')).resolves.toEqual({ name: 'Alice', team: 'red', email: 'alice@example.org', email_verified: true });
  });

  test('finds accounts by login and by id', async () => {
    await expect(accounts.findByLogin('alice@EXAMPLE.org')).resolves.toMatchObject({ id: 'alice' });
    await expect(accounts.findById('alice')).resolves.toMatchObject({ id: 'alice' });
    await expect(accounts.findById('mallory')).resolves.toBeUndefined();
  });

  test('a login name typed composed or decomposed, in full-width letters or in another case is the same name (RFC 8265)', async () => {
    const zoe = memoryAccounts([{ id: 'zoe', username: 'zo\u00eb', password: 'pw-pw-pw', claims: { email: '\u674e@example.org' } }]);
    for (const typed of ['zo\u00eb', 'zoe\u0308', 'ZOE\u0308', '\uff5a\uff4f\u00eb', 'ZO\u00cb', '\u674E@EXAMPLE.ORG']) {
      expect([typed, await zoe.verifyPassword(typed, 'pw-pw-pw')]).toEqual([typed, 'zoe']);
      expect([typed, (await zoe.findByLogin(typed))?.id]).toEqual([typed, 'zoe']);
    }
    expect(loginKey('\uff21\uff2c\uff29\uff23\uff25')).toBe('alice');
  });

  test('two accounts with one login name are refused at start-up (the later one took the name over: the earlier one\'s password stopped working)', () => {
    for (const list of [
      [{ id: 'a', username: 'Alice', password: 'p' }, { id: 'b', username: 'alice', password: 'q' }],
      [{ id: 'a', username: 'alice', password: 'p', claims: { email: 'bob@example.org' } }, { id: 'b', username: 'bob@example.org', password: 'q' }],
      [{ id: 'a', username: 'zo\u00eb', password: 'p' }, { id: 'b', username: 'zoe\u0308', password: 'q' }],
    ]) {
      expect(() => memoryAccounts(list)).toThrow(/accounts "a" and "b" have the same login name/);
    }
    // one account's username and email may be the same
    expect(() => memoryAccounts([{ id: 'a', username: 'a@example.org', password: 'p', claims: { email: 'A@example.org' } }])).not.toThrow();
  });

  test('refuses duplicate ids and accounts without a password', () => {
    expect(() => memoryAccounts([{ id: 'a', username: 'a', password: 'x' }, { id: 'a', username: 'b', password: 'y' }])).toThrow(/duplicate/);
    expect(() => memoryAccounts([{ id: 'a', username: 'a' } as never])).toThrow(/password/);
  });

  test('bad arguments are start-up errors (OpConfigError, option "accounts") saying what to pass', () => {
    for (const bad of [undefined, 'alice', [null], [{ id: 'a', username: 'a', password: 'x' }, { id: 'a', username: 'b', password: 'y' }]]) {
      expect(() => memoryAccounts(bad as never)).toThrow(expect.objectContaining({ name: 'OpConfigError', option: 'accounts' }));
    }
    expect(() => memoryAccounts([{ id: 'a', username: 'a' } as never])).toThrow(OpConfigError);
    expect(() => memoryAccounts(undefined as never)).toThrow(/pass an array of \{ id, username, password, claims \}/);
    expect(() => memoryAccounts([{ id: 'a', username: 'a' } as never])).toThrow(/account 0 needs id, username and password/);
  });

  test('claimsForScope leaves out what the scope does not cover', () => {
    expect(claimsForScope({ phone_number: '1', address: { country: 'UK' } }, 'openid phone')).toEqual({ phone_number: '1' });
  });
});

describe('op()\'s findAccount (what oidc-provider calls on every userinfo request)', () => {
  const build = async (store: AccountStore) => {
    const { resolveOptions } = await import('../src/options.js');
    const { buildConfiguration } = await import('../src/provider.js');
    const o = resolveOptions({
      issuer: 'http://127.0.0.1:3001/op', accounts: store, cookieKeys: ['accounts-test-cookie-key-0123456789'],
      clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['http://127.0.0.1/cb'] }],
    });
    const config = buildConfiguration(o, { store: undefined as never, views: {} as never, jwks: { keys: [] }, cookieKeys: [] });
    return (id: string) => config.findAccount!(undefined as never, id);
  };
  const ALICE_EMAIL = { email: 'alice@example.org', email_verified: true, sub: 'alice' };

  test('a memoryAccounts() store answers at once, with the claims of the scope and those asked by name', async () => {
    const find = await build(memoryAccounts([{ id: 'alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice', email: 'alice@example.org', email_verified: true } }]));
    const account = find('alice');
    expect(account).not.toBeInstanceOf(Promise);
    expect(await (account as Account).claims('userinfo', 'openid email', {}, [])).toEqual(ALICE_EMAIL);
    expect(await (account as Account).claims('userinfo', 'openid', { name: null }, [])).toEqual({ name: 'Alice', sub: 'alice' });
    expect(await find('mallory')).toBeUndefined();
  });

  test('an account\'s sub is its id, whatever its claims say', async () => {
    const store = memoryAccounts([{ id: 'alice', username: 'alice', password: 'wonderland', claims: { sub: 'mallory', email: 'alice@example.org', email_verified: true } }]);
    await expect(store.claims('alice', 'openid')).resolves.toEqual({});
    const account = (await build(store))('alice') as Account;
    expect(await account.claims('userinfo', 'openid email', {}, [])).toEqual(ALICE_EMAIL);
    expect(await account.claims('id_token', 'openid', {}, [])).toEqual({ sub: 'alice' });
  });

  test('a copy of the store, or one whose methods the app replaced, is asked through its own methods', async () => {
    const original = memoryAccounts([{ id: 'alice', username: 'alice', password: 'wonderland', claims: { email: 'alice@example.org', email_verified: true } }]);
    const copy = { ...original };
    const viaCopy = await (await build(copy))('alice');
    expect(await viaCopy!.claims('userinfo', 'openid email', {}, [])).toEqual(ALICE_EMAIL);

    const patched = memoryAccounts([{ id: 'alice', username: 'alice', password: 'wonderland' }]);
    const asked: string[] = [];
    patched.findById = async (id) => (asked.push(`findById ${id}`), id === 'bob' ? { id: 'bob', logins: ['bob'] } : undefined);
    patched.claims = async (id, scope) => (asked.push(`claims ${id} ${scope}`), { email: `${id}@example.org` });
    const find = await build(patched);
    expect(find('bob')).toBeInstanceOf(Promise);
    const bob = await find('bob');
    expect(await bob!.claims('userinfo', 'openid email', {}, [])).toEqual({ email: 'bob@example.org', sub: 'bob' });
    expect(await find('alice')).toBeUndefined(); // the replaced findById decides, not the store's own
    expect(asked).toEqual(['findById bob', 'findById bob', 'claims bob openid email', 'findById alice']);
  });
});
