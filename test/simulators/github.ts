/** Re-export: the simulator lives under packages/rp/test/simulators, where its dependencies (jose, oidc-provider) resolve. */
export * from '../../packages/rp/test/simulators/github.js';
