// A seeded pseudo-random generator for initialisation and shuffling: xoshiro128** (Blackman and
// Vigna), 128 bits of state, seeded through splitmix32 so that nearby seeds give unrelated streams.
// Its whole state (including a cached Box–Muller value) can be read and restored, so a resumed run
// draws exactly the numbers the uninterrupted run would have drawn.

/** Everything needed to continue a stream exactly; plain JSON. */
export interface RngState {
  /** The four 32-bit words of xoshiro128** state (unsigned). */
  s: [number, number, number, number];
  /** The second value of the last Box–Muller pair, not yet returned (null when none is cached). */
  spare: number | null;
}

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** splitmix32 step: expands a 32-bit seed into well-mixed words. */
function splitmix32(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) >>> 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function checkWord(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= TWO_POW_32) {
    throw new Error(`Rng: ${what} must be an unsigned 32-bit integer, got ${String(v)}`);
  }
  return v;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  /**
   * A generator seeded from a non-negative integer (up to 2^53). Seeds above 2^32 mix their high
   * bits in, so every safe integer seed gives its own stream.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`Rng: seed must be a non-negative safe integer, got ${String(seed)}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    const mix = { x: (lo ^ Math.imul(hi, 0x27d4eb2f)) >>> 0 };
    this.s0 = splitmix32(mix);
    this.s1 = splitmix32(mix);
    this.s2 = splitmix32(mix);
    this.s3 = splitmix32(mix);
    // The all-zero state is the one state xoshiro never leaves; splitmix32 cannot give four zeros
    // in a row, but guard anyway so the invariant is local.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator continuing exactly from a saved state. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  getState(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  setState(state: RngState): void {
    if (state === null || typeof state !== 'object' || !Array.isArray(state.s) || state.s.length !== 4) {
      throw new Error('Rng.setState: expected { s: [4 unsigned 32-bit words], spare: number | null }');
    }
    const [a, b, c, d] = state.s.map((w, i) => checkWord(w, `state.s[${i}]`));
    if ((a | b | c | d) === 0) throw new Error('Rng.setState: the all-zero state is invalid for xoshiro128**');
    const spare = state.spare ?? null;
    if (spare !== null && (typeof spare !== 'number' || !Number.isFinite(spare))) {
      throw new Error(`Rng.setState: spare must be a finite number or null, got ${String(spare)}`);
    }
    this.s0 = a;
    this.s1 = b;
    this.s2 = c;
    this.s3 = d;
    this.spare = spare;
  }

  /** The next unsigned 32-bit output of xoshiro128**. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (two 32-bit outputs). */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n), without modulo bias (rejection sampling); n up to 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${String(n)}`);
    }
    // Accept only draws below the largest multiple of n that fits in 32 bits.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal value (Box–Muller; the pair's second value is cached for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    // 1 - uniform() lies in (0, 1], so the logarithm is finite.
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with values drawn from N(mean, std²) (note: std comes first, as in most init calls); returns `out`. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, std = 1, mean = 0): T {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with values uniform in [low, high); returns `out`. */
  fillUniform<T extends Float32Array | Float64Array>(out: T, low = 0, high = 1): T {
    const span = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + span * this.uniform();
    return out;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: any }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    if (!Number.isInteger(n) || n < 0) throw new Error(`Rng.permutation: n must be a non-negative integer, got ${String(n)}`);
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /**
   * An independent generator derived from this one's next outputs (e.g. one per data worker),
   * leaving this one advanced by four draws.
   */
  fork(): Rng {
    const child = new Rng(0);
    child.setState({ s: [this.nextUint32(), this.nextUint32(), this.nextUint32(), (this.nextUint32() | 1) >>> 0], spare: null });
    return child;
  }
}
