/**
 * Runs operations on the same key one after another (a per-key queue), so read-modify-write
 * updates of one record in the session store do not overwrite each other within a process.
 */
export class KeyQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `operation` once every earlier operation on `key` has settled; resolves with its result. */
  run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(operation, operation);
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
