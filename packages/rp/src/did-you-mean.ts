/**
 * "Did you mean …?" for option names: the one both packages use when they refuse a name they do
 * not know (a typo, or another library's name for the same thing).
 */

/**
 * The known name `key` most likely meant: from `aliases` (other libraries' names), the same name in
 * another case, or one at most two edits away; undefined when none is close.
 *
 * @example
 * ```ts
 * didYouMean('clientID', ['clientId', 'issuer']);                        // 'clientId'
 * didYouMean('issuerBaseURL', ['issuer'], { issuerBaseURL: 'issuer' });   // 'issuer'
 * ```
 */
export function didYouMean(key: string, known: readonly string[], aliases: Record<string, string> = {}): string | undefined {
  if (Object.hasOwn(aliases, key)) return aliases[key];
  const lower = key.toLowerCase();
  return known.find((k) => k.toLowerCase() === lower) ?? known.find((k) => editDistance(k.toLowerCase(), lower) <= 2);
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}
