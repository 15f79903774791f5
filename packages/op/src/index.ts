// first: quiets oidc-provider's "Unsupported runtime" warning on the Node.js versions we support (see the module)
import { endRuntimeWarningFilter } from './runtime-warning.js';
export { op, type OpApp } from './router.js';
export { authorizationServerMetadata } from './well-known.js';
export { webfinger, ISSUER_REL, type WebFingerOptions } from './webfinger.js';
export {
  memoryAccounts, loginKey, claimsForScope, SCOPE_CLAIMS,
  type Account, type AccountClaims, type AccountStore, type MemoryAccount,
} from './accounts.js';
export { password, type PasswordOptions } from './authenticators/password.js';
export { upstream, type UpstreamOptions } from './authenticators/upstream.js';
export type {
  Authenticator, AuthenticationFailure, AuthenticationRedirect, AuthenticationSuccess, AuthenticatorMount,
  LoginFormContext, VerifyInput,
} from './authenticators/authenticator.js';
export { memoryAdapter, type MemoryAdapterOptions, type MemoryOpStore } from './adapters/memory.js';
export { redisAdapter, type RedisAdapterClient, type RedisAdapterOptions, type RedisCommandClient } from './adapters/redis.js';
export type { OpStore } from './adapters/types.js';
export { generateKeys } from './keys.js';
export type { PkcePolicy } from './pkce-policy.js';
export { unlockLogin } from './throttle.js';
export { OpConfigError, OpError, StoreUnavailableError, type OpErrorCode } from './errors.js';
export {
  DEFAULT_TTL, type OpClient, type OpFeatures, type OpOptions, type OpResource, type OpResourceIndicators, type OpThrottle,
  type OpTokenExchange, type OpTtl,
} from './options.js';
export { defaultViews, type View, type ViewProps, type Views } from './views/render.js';
export { escapeHtml } from './views/escape.js';
export type { ConsentItem, ConsentViewProps } from './views/consent.js';
export type { ErrorViewProps } from './views/error.js';
export type { LayoutProps } from './views/layout.js';
export type { ClientScreenProps, LoginFormProps, LoginViewProps } from './views/login.js';
export type { LogoutSuccessViewProps, LogoutViewProps } from './views/logout.js';
export type { DeviceConfirmViewProps, DeviceInputViewProps, DeviceSuccessViewProps } from './views/device.js';
export type { TokenExchangePolicy, TokenExchangeRequest, TokenExchangeSubject } from './grants/token-exchange.js';

endRuntimeWarningFilter();
