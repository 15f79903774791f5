// The people who can sign in at the demo identity provider. Passwords are printed at start-up:
// this is a demo, never do this with real accounts.

/** Demo accounts for `memoryAccounts()` of `@openid-express/op`. */
export const demoAccounts = [
  {
    id: 'alice',
    username: 'alice',
    password: 'wonderland',
    claims: {
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      preferred_username: 'alice',
      email: 'alice@example.org',
      email_verified: true,
      locale: 'en-GB',
    },
  },
  {
    id: 'bob',
    username: 'bob',
    password: 'builder',
    claims: {
      name: 'Bob Builder',
      given_name: 'Bob',
      family_name: 'Builder',
      preferred_username: 'bob',
      email: 'bob@example.org',
      email_verified: false,
    },
  },
];
