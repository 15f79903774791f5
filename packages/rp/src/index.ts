export {};
export { google, HostedDomainError, type GoogleOptions } from './providers/google.js';
export { microsoft, TenantError, type MicrosoftOptions } from './providers/microsoft.js';
export { github, githubTokenFetch, type GitHubOptions, type GitHubUser } from './providers/github.js';
export { oauth2, UserEndpointError, type OAuth2Options } from './providers/oauth2.js';
