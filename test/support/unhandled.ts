/**
 * The promise rejections nobody handled while `run` ran and `settleMs` more passed: what would end a
 * plain Node process (jest keeps them quiet).
 *
 * @example
 * ```ts
 * expect(await unhandledRejectionsDuring(() => void startSomething())).toEqual([]);
 * ```
 */
export async function unhandledRejectionsDuring(run: () => unknown, settleMs = 200): Promise<unknown[]> {
  const unhandled: unknown[] = [];
  const record = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', record);
  try {
    await run();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  } finally {
    process.off('unhandledRejection', record);
  }
  return unhandled;
}
