export interface ChurnOptions {
  /** Connections numbered 0..connections-1, as the pool opened them. */
  connections: number;
  /** Fraction of the connections that leave per minute (0.03: 3 %), spread evenly over time. */
  perMinute: number;
  /** How long a client stays away on average; each draws 0.5× to 1.5× of it. */
  awayMs: number;
  /** [0, 1) source, replaceable in tests. */
  random?: () => number;
}

/**
 * Who leaves and comes back during a soak, as users do: a laptop lid, a train tunnel. Plans only;
 * the caller asks what is due at a time, drops and resumes those connections itself. A client
 * that is away is not picked again until it is back.
 */
export class ChurnSchedule {
  readonly #options: ChurnOptions;
  readonly #random: () => number;
  /** Connection → ms at which it comes back. */
  readonly #away = new Map<number, number>();
  #drops = 0;

  constructor(options: ChurnOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  /** Connections dropped so far (each one a resume, now or at `rest()`). */
  get drops(): number {
    return this.#drops;
  }

  /** What to do at `elapsedMs` since churn began: connections to drop, and those to resume. */
  due(elapsedMs: number): { drop: number[]; resume: number[] } {
    const resume: number[] = [];
    for (const [connection, backAt] of this.#away) {
      if (backAt <= elapsedMs) resume.push(connection);
    }
    for (const connection of resume) this.#away.delete(connection);
    const { connections, perMinute, awayMs } = this.#options;
    const wanted = Math.floor((perMinute * connections * elapsedMs) / 60_000);
    const drop: number[] = [];
    // Only clients that are connected now: neither away nor coming back this very moment.
    const busy = new Set(resume);
    while (this.#drops < wanted && this.#away.size + busy.size < connections) {
      const connection = Math.floor(this.#random() * connections);
      if (this.#away.has(connection) || busy.has(connection)) continue;
      this.#away.set(connection, elapsedMs + awayMs * (0.5 + this.#random()));
      drop.push(connection);
      this.#drops++;
    }
    // Drops that cannot happen (everyone away) are skipped, not owed.
    this.#drops = Math.max(this.#drops, wanted);
    return { drop, resume };
  }

  /** Every client still away, to bring back when the run ends; none is away afterwards. */
  rest(): number[] {
    const rest = [...this.#away.keys()];
    this.#away.clear();
    return rest;
  }
}
