// Counts of inputs skipped, by reason: bad data is never fatal and never silent.

export type SkipReason =
  | 'corrupt_image'
  | 'empty_member'
  | 'missing_image'
  | 'missing_caption'
  | 'caption_not_utf8'
  | 'bad_json'
  | 'truncated_tar'
  | 'corrupt_tar_header'
  | 'missing_file'
  | 'unreadable_file';

export class SkipCounter {
  private readonly counts = new Map<string, number>();
  /** The first few details of each reason, for messages. */
  private readonly examples = new Map<string, string[]>();

  add(reason: SkipReason | string, detail?: string, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
    if (detail) {
      const list = this.examples.get(reason) ?? [];
      if (list.length < 3) list.push(detail);
      this.examples.set(reason, list);
    }
  }

  get(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }

  get total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }

  merge(other: SkipCounter | Record<string, number>): void {
    const entries = other instanceof SkipCounter ? other.counts : Object.entries(other);
    for (const [k, v] of entries) this.add(k, undefined, v);
  }

  /** {reason: count}, reasons sorted. */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  exampleOf(reason: string): string[] {
    return this.examples.get(reason) ?? [];
  }
}
