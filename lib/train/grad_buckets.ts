// Bucketed gradient all-reduce overlapped with backward (PyTorch DDP's scheme): every
// parameter's gradient lives in one flat buffer, laid out in the order the backward pass
// finishes them (the loss's logit scale/bias first; then for each tower the parameters above its
// transformer — projection, final layernorm, attention pooler — with its last block, then the
// blocks from the last, then the embeddings below them); consecutive gradients form buckets of about `bucketBytes`
// (PyTorch's bucket_cap_mb, 25 MB by default), and each bucket's all-reduce is launched as soon
// as the last of its gradients is written, while backward goes on. The optimizer waits for all.
// Buckets are views of the flat buffer, so the all-reduce runs in place: no copies.
import type { Communicator, ReduceOp } from '../distributed/communicator.js';
import type { CLIP } from '../nn/clip.js';
import type { Parameter } from '../nn/module.js';
import { Tensor } from '../tensor.js';

/** PyTorch DDP's bucket_cap_mb default. */
export const DEFAULT_BUCKET_MB = 25;

/** A point of the backward pass after which some gradients are final. */
export type GradEvent = 'loss' | 'visual' | 'text' | `visual.block${number}` | `text.block${number}`;

interface ReadyGroup {
  event: GradEvent;
  params: Parameter[];
}

/** The parameters in the order backward finishes their gradients, grouped by the event that finishes them. */
export function gradientReadyOrder(model: CLIP): ReadyGroup[] {
  const groups: ReadyGroup[] = [];
  const seen = new Set<Parameter>();
  const add = (event: GradEvent, ps: Parameter[]) => {
    const fresh = ps.filter((p) => !seen.has(p));
    for (const p of fresh) seen.add(p);
    if (fresh.length) groups.push({ event, params: fresh });
  };
  // The loss writes the logit scale's (and SigLIP's bias's) gradient before either tower runs.
  add('loss', [model.logitScale, ...(model.logitBias ? [model.logitBias] : [])]);
  // The step runs the visual tower's backward, then the text tower's. A tower's head (the
  // parameters above its transformer) has its gradients before any block's: it joins the group of
  // the last block, the first whose end is signalled (Transformer.onBlockBackward).
  for (const name of ['visual', 'text'] as const) {
    const tower = model[name];
    const blocks = tower.transformer.blocks;
    const head = name === 'visual' ? visualHead(model) : textHead(model);
    for (let i = blocks.length - 1; i >= 0; i--) add(`${name}.block${i}`, [...(i === blocks.length - 1 ? head : []), ...blocks[i].parameters()]);
    add(name, tower.parameters());
  }
  if (seen.size !== model.parameters().length) throw new Error('gradientReadyOrder: some parameters belong to no tower');
  return groups;
}

/** The vision tower's parameters after its transformer: attention pooler, final layernorm, projection. */
function visualHead(model: CLIP): Parameter[] {
  const v = model.visual;
  return [v.proj, ...v.lnPost.parameters(), ...(v.attnPool?.parameters() ?? [])];
}

/** The text tower's parameters after its transformer: final layernorm, projection. */
function textHead(model: CLIP): Parameter[] {
  const t = model.text;
  return [...(t.textProjection ? [t.textProjection] : []), ...(t.textProjectionLinear?.parameters() ?? []), ...t.lnFinal.parameters()];
}

interface Bucket {
  view: Tensor;
  /** The index of the ready group whose event completes it. */
  lastGroup: number;
  bytes: number;
  launched: boolean;
  /** The parameters whose gradients it holds, in buffer order. */
  names: string[];
}

export interface BucketLaunch {
  bucket: number;
  event: GradEvent;
  bytes: number;
}

export class GradientBuckets implements Disposable {
  readonly buckets: Bucket[] = [];
  private readonly groups: ReadyGroup[];
  private readonly eventIndex = new Map<GradEvent, number>();
  private readonly flat: Tensor;
  private pending: Promise<void>[] = [];
  /** The launches of the last step, in order (for tests and logs). */
  launches: BucketLaunch[] = [];

  constructor(
    readonly model: CLIP,
    readonly comm: Communicator,
    readonly bucketBytes = DEFAULT_BUCKET_MB * 1024 * 1024,
    readonly op: ReduceOp = 'mean',
  ) {
    if (!(bucketBytes > 0)) throw new RangeError(`GradientBuckets: bucketBytes must be positive, got ${bucketBytes}`);
    this.groups = gradientReadyOrder(model);
    this.groups.forEach((g, i) => this.eventIndex.set(g.event, i));
    const total = this.groups.reduce((n, g) => n + g.params.reduce((m, p) => m + p.numel, 0), 0);
    this.flat = Tensor.zeros([total], 'f32', model.device);
    // Each gradient becomes a view of the flat buffer; buckets close at a group's end once full.
    let at = 0;
    let start = 0;
    let names: string[] = [];
    this.groups.forEach((g, gi) => {
      for (const p of g.params) {
        using rows = this.flat.rows(at, p.numel);
        p.useGradStorage(rows.reshape(p.shape));
        at += p.numel;
        names.push(p.name);
        if ((at - start) * 4 >= bucketBytes) {
          this.buckets.push({ view: this.flat.rows(start, at - start), lastGroup: gi, bytes: (at - start) * 4, launched: false, names });
          start = at;
          names = [];
        }
      }
    });
    if (at > start) this.buckets.push({ view: this.flat.rows(start, at - start), lastGroup: this.groups.length - 1, bytes: (at - start) * 4, launched: false, names });
    // A bucket closed in the middle of a group is complete only when that group is.
    this.attachHooks();
  }

  private attachHooks(): void {
    for (const name of ['visual', 'text'] as const) {
      this.model[name].transformer.onBlockBackward = (i) => this.ready(`${name}.block${i}`);
    }
  }

  /** Starts a step: nothing launched yet. */
  begin(): void {
    for (const b of this.buckets) b.launched = false;
    this.pending = [];
    this.launches = [];
    this.held = false;
  }

  private held = false;

  /**
   * While held, events launch nothing: the backward of a micro-batch that is not the step's last
   * (gradient accumulation) writes gradients that later micro-batches still add to.
   */
  hold(on: boolean): void {
    this.held = on;
  }

  /** The gradients `event` finishes are written: launches every bucket now complete. */
  ready(event: GradEvent): void {
    if (this.held) return;
    const gi = this.eventIndex.get(event);
    if (gi === undefined) return; // an event with no parameters of its own
    this.buckets.forEach((b, i) => {
      if (b.launched || b.lastGroup > gi) return;
      b.launched = true;
      this.launches.push({ bucket: i, event, bytes: b.bytes });
      this.pending.push(this.comm.allReduce(b.view, this.op));
    });
  }

  /** Launches what is left and waits for every bucket's all-reduce. */
  async wait(): Promise<void> {
    this.held = false;
    this.ready(this.groups[this.groups.length - 1].event);
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
  }

  dispose(): void {
    for (const name of ['visual', 'text'] as const) this.model[name].transformer.onBlockBackward = null;
    for (const b of this.buckets) b.view.dispose();
    this.flat.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
