/**
 * How many long-held requests (open event streams, waiting blocking queries) each caller
 * has, against a limit, so that one caller cannot hold every socket and timer of the server.
 */
export class CallerQuota {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  holding(caller: string): number {
    return this.held.get(caller) ?? 0;
  }

  /** Takes one for the caller and answers how to give it back (once), or undefined when the caller is at the limit. */
  take(caller: string): (() => void) | undefined {
    const holding = this.holding(caller);
    if (holding >= this.limit) return undefined;
    this.held.set(caller, holding + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      const left = this.holding(caller) - 1;
      if (left <= 0) this.held.delete(caller);
      else this.held.set(caller, left);
    };
  }
}
