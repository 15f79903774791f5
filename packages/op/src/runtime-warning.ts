/**
 * oidc-provider prints "Unsupported runtime. Use Node.js v22.x LTS ..." when it is first loaded on
 * any Node.js before 22. This package supports Node.js >= 20.19 (its `engines`; the whole test suite
 * runs there), so on those versions that one warning is noise the user did not cause. This module is
 * imported first by the package's entry point: it drops exactly that message while oidc-provider
 * loads, and `endRuntimeWarningFilter()` (called once the entry point's imports are done) puts
 * `console.warn` back. Every other warning passes; older Node.js versions and other runtimes (Bun,
 * Deno) still get the warning.
 */

/** The start of oidc-provider's warning (its helpers/attention.js may wrap it in terminal colours). */
const UNSUPPORTED_RUNTIME = 'oidc-provider WARNING: Unsupported runtime.';
const MINIMUM: readonly [number, number] = [20, 19];

/** Whether `version` (process.versions.node) is one this package supports: >= 20.19. */
export function supportedNode(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? '').split('.').map(Number);
  return major > MINIMUM[0] || (major === MINIMUM[0] && minor >= MINIMUM[1]);
}

function isNode(): boolean {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  return g.Bun === undefined && g.Deno === undefined && process.release?.name === 'node';
}

/**
 * `warn` without oidc-provider's "Unsupported runtime" warning when `version` is supported; any other
 * call (other text, several arguments) goes through unchanged.
 */
export function withoutRuntimeWarning(warn: (...args: unknown[]) => void, version: string | undefined): (...args: unknown[]) => void {
  if (!supportedNode(version)) return warn;
  return (...args: unknown[]) => {
    // eslint-disable-next-line no-control-regex
    if (args.length === 1 && typeof args[0] === 'string' && args[0].replace(/\x1b\[[\d;]*m/g, '').startsWith(UNSUPPORTED_RUNTIME)) return;
    warn(...args);
  };
}

const original = console.warn;
const filtered = isNode() ? withoutRuntimeWarning(original, process.versions.node) : original;
console.warn = filtered;

/** Puts `console.warn` back, unless someone replaced it meanwhile (then theirs stays). */
export function endRuntimeWarningFilter(): void {
  if (console.warn === filtered) console.warn = original;
}
