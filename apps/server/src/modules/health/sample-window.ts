export interface Percentiles {
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/**
 * The most recent samples of one measure (a bounded ring buffer with their times), for percentiles
 * over a recent window: O(1) to add, sorted only when read.
 */
export class SampleWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private size = 0;

  constructor(
    private readonly capacity = 512,
    private readonly windowMs = 300_000,
  ) {
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  add(value: number, at: number) {
    if (!Number.isFinite(value)) return;
    this.values[this.next] = value;
    this.times[this.next] = at;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Nearest-rank percentiles of the samples taken within the window ending at `now`. */
  percentiles(now: number): Percentiles {
    const recent: number[] = [];
    for (let index = 0; index < this.size; index++) {
      if (now - (this.times[index] as number) <= this.windowMs) recent.push(this.values[index] as number);
    }
    if (recent.length === 0) return { samples: 0, p50: null, p90: null, p99: null };
    recent.sort((a, b) => a - b);
    const rank = (share: number) => recent[Math.max(0, Math.ceil(share * recent.length) - 1)] as number;
    return { samples: recent.length, p50: rank(0.5), p90: rank(0.9), p99: rank(0.99) };
  }
}
