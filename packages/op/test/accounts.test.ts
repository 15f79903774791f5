import { claimsForScope, memoryAccounts, OpConfigError } from '@openid-express/op';

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
    // ...changes neither the account nor the next answer (the names per scope are remembered, not the objects)
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
