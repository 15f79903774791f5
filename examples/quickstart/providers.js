// Which providers the application offers: the Demo OP always, Google / Microsoft / GitHub when
// their client id and secret are in the environment.
import { oidc, google, microsoft, github } from '@openid-express/rp';

const social = [
  { name: 'google', label: 'Google', env: 'GOOGLE', mark: 'G', preset: google },
  { name: 'microsoft', label: 'Microsoft', env: 'MICROSOFT', mark: 'M', preset: microsoft, extra: (env) => ({ tenant: env.MICROSOFT_TENANT || 'common' }) },
  { name: 'github', label: 'GitHub', env: 'GITHUB', mark: 'GH', preset: github, extra: (env) => gitHubServer(env.GITHUB_BASE_URL) },
];

// GITHUB_BASE_URL points at a GitHub Enterprise Server; plain http is accepted on loopback only.
function gitHubServer(baseURL) {
  if (!baseURL) return {};
  return { baseURL, allowInsecureRequests: /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(\/|$)/.test(baseURL) };
}

/**
 * The `providers` option of `rp()` plus what the home page needs to draw buttons and set-up hints.
 *
 * @example
 *   const { providers, buttons } = configureProviders({ issuer, client, baseURL, env: process.env });
 *   app.use(rp({ baseURL, providers }));
 */
export function configureProviders({ issuer, client, baseURL, env }) {
  const providers = {
    demo: oidc({
      issuer,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      scope: 'openid profile email offline_access',
      label: 'Demo OP',
      // offline_access (a refresh token) is only granted with prompt=consent (OIDC Core 11).
      authorizationParams: { prompt: 'consent' },
      // The Demo OP runs on plain http on loopback; never allow this against a real provider.
      allowInsecureRequests: issuer.startsWith('http:'),
    }),
  };
  const buttons = [{ name: 'demo', label: 'Demo OP', mark: 'D', style: 'demo' }];
  const setupHints = [];
  for (const s of social) {
    const clientId = env[`${s.env}_CLIENT_ID`];
    const clientSecret = env[`${s.env}_CLIENT_SECRET`];
    if (clientId && clientSecret) {
      providers[s.name] = s.preset({ clientId, clientSecret, ...s.extra?.(env) });
      buttons.push({ name: s.name, label: s.label, mark: s.mark, style: s.name });
    } else {
      setupHints.push({ label: s.label, env: [`${s.env}_CLIENT_ID`, `${s.env}_CLIENT_SECRET`], callback: `${baseURL}/auth/callback/${s.name}` });
    }
  }
  return { providers, buttons, setupHints };
}

/** Label of a provider entry for display ("Demo OP", "GitHub" ...). */
export function providerLabel(name) {
  if (name === 'demo') return 'Demo OP';
  return social.find((s) => s.name === name)?.label ?? name;
}
