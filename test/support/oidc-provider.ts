/**
 * A real oidc-provider v9 on loopback for tests: see the API at the top of
 * packages/rp/test/support/oidc-provider.ts (kept there so that oidc-provider resolves from the
 * rp package's dependencies).
 */
export * from '../../packages/rp/test/support/oidc-provider.js';
