export { rp, rpErrorHandler, type RpRouter } from './router.js';
export { redisCoordination, type Coordination, type RedisCoordinationOptions, type RedisEvalClient } from './coordination.js';
export { requireAuth, type RequireAuthOptions, type ClaimRequirement } from './require-auth.js';
export { RelyingParty, type AuthorizationRequest } from './relying-party.js';
export type { TokenResult } from './token-result.js';
export type { ClientCredentialsOptions } from './client-credentials.js';
export type { PasswordGrantOptions } from './password-grant.js';
export { TOKEN_EXCHANGE_GRANT, ACCESS_TOKEN_TYPE, type TokenExchangeOptions } from './token-exchange.js';
export type { Introspection, TokenTypeHint } from './token-management.js';
export type { DeviceAuthorization, DeviceAuthorizationOptions, DevicePollOptions } from './device.js';
export { dpopThumbprint, type DPoPAlg, type DPoPKey, type DPoPBoundToken } from './dpop.js';
export { RequestContext, type AccessToken, type OidcContext } from './context.js';
export { RpError, OptionsError, type RpErrorCode } from './errors.js';
export { oidc, type OidcProviderOptions } from './providers/oidc.js';
export type { RpOptions, ProviderConfig, ProviderInfo, NormalizedUser, ResponseType } from './options.js';
export type { Authentication, Transaction, PendingLogin, StoredAccessToken, OidcSessionData } from './session.js';
export { readStoredLogin, type StoredLogin } from './stored-login.js';
export { google, HostedDomainError, type GoogleOptions } from './providers/google.js';
export { microsoft, TenantError, type MicrosoftOptions } from './providers/microsoft.js';
export { github, githubTokenFetch, type GitHubOptions, type GitHubUser } from './providers/github.js';
export { oauth2, UserEndpointError, type OAuth2Options } from './providers/oauth2.js';
export {
  memoryRegistrationStore, DynamicProviderError, type DynamicOptions, type RegistrationStore, type RegisteredClient,
} from './discovery/registration.js';
export { resolveClaimSources, type ClaimSourceOptions } from './claim-sources.js';
export { doctor, formatReport, type DoctorReport, type DoctorCheck, type DoctorOptions } from './doctor/index.js';
export { didYouMean } from './did-you-mean.js';
export { copyJson } from './copy-json.js';
