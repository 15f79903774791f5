import { join } from 'node:path';
import { repoRoot } from './run-script.js';

/**
 * Loads an example's module (plain JavaScript) with the shape the test declares. Under jest the
 * packages it imports resolve to their TypeScript sources.
 *
 * @example
 *   const { createApp } = loadExample<{ createApp(o: { baseURL: string }): Express }>('examples/rp-social/app.js');
 */
export function loadExample<T>(path: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(join(repoRoot, path)) as T;
}
