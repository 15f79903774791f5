// oidc-provider's own helpers for outgoing requests and authorization errors, which request-uri.ts reuses
// (not in @types/oidc-provider; the package has no `exports` map, so the paths resolve)
declare module 'oidc-provider/lib/helpers/fetch_request.js' {
  import type Provider from 'oidc-provider';
  /** fetch with oidc-provider's SSRF guard, a 2.5 s timeout and no user-agent, through `configuration.fetch`. */
  export default function fetchRequest(provider: Provider, url: string, options: RequestInit): Promise<Response>;
}
declare module 'oidc-provider/lib/helpers/fetch_body_check.js' {
  import type Provider from 'oidc-provider';
  /** The body, refused ("response too large") past `configuration.fetchResponseBodyLimits[purpose]`. */
  export default function fetchBodyCheck(provider: Provider, purpose: string, response: Response): Promise<Buffer>;
}
declare module 'oidc-provider/lib/shared/authorization_error_handler.js' {
  import type { KoaContextWithOIDC } from 'oidc-provider';
  /** Answers what `next` throws as the authorization endpoint does: to the redirect_uri, or the error page. */
  export default function authorizationErrorHandler(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<void>;
}
