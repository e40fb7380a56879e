// A budget of decoded pixels in flight: decodes run concurrently up to a count, and also only while
// the pixels they hold together stay within the budget. Without it, a shard of huge images decoded
// at the core count holds several full-size bitmaps at once (6 × 16000² PNGs: 2.4 GB on 2 cores).
// An image larger than the whole budget still decodes, alone.

/** Default: 2^26 pixels (about 200 MB of RGB bytes) decoded at once. */
export const DEFAULT_PIXEL_BUDGET = 2 ** 26;

export class PixelBudget {
  private inFlight = new Set<Promise<void>>();
  private pixels = 0;
  /** The most pixels that were in flight at once (for tests and reports). */
  peak = 0;

  constructor(readonly maxConcurrent: number, readonly budget = DEFAULT_PIXEL_BUDGET) {
    if (!(Number.isInteger(maxConcurrent) && maxConcurrent >= 1)) throw new Error(`PixelBudget: maxConcurrent must be an integer ≥ 1, got ${maxConcurrent}`);
    if (!(budget > 0)) throw new Error(`PixelBudget: budget must be > 0, got ${budget}`);
  }

  /** Waits until `pixels` more fit (or nothing else runs), then starts `work`; it runs in the background. */
  async run(pixels: number, work: () => Promise<void>): Promise<void> {
    const cost = Number.isFinite(pixels) && pixels > 0 ? pixels : 0;
    while (this.inFlight.size > 0 && (this.inFlight.size >= this.maxConcurrent || this.pixels + cost > this.budget)) {
      await Promise.race(this.inFlight);
    }
    this.pixels += cost;
    this.peak = Math.max(this.peak, this.pixels);
    const p: Promise<void> = work()
      .catch(() => {})
      .finally(() => {
        this.pixels -= cost;
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  /** Waits for everything started to end. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
