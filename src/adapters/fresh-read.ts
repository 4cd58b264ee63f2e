/**
 * A read of something the whole host shares (its link dump, its mount table) that many callers need
 * at once, as a reconcile of n containers does: each call resolves with a read that started after the
 * call (nothing that existed at the call is missing), and callers that ask while one runs share the
 * next one, which starts when it ends. A reconcile makes a few reads instead of n.
 */
export function freshRead<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | null = null;
  let next: Promise<T> | null = null;
  const start = (): Promise<T> => {
    const current = read();
    running = current;
    void current.catch(() => {}).finally(() => {
      if (running === current) running = null;
    });
    return current;
  };
  return () => {
    if (running === null) return start();
    return (next ??= running.catch(() => {}).then(() => {
      next = null;
      return start();
    }));
  };
}
