// A GPU run's batches: written by the host into page-locked (pinned) staging buffers and
// uploaded on the device's copy stream, so that step N + 1's upload runs while step N
// computes. Two sets of staging + device buffers are used in turn (the device addresses of
// each set never change, which graph capture relies on). Three waits keep it correct:
//   1. the host rewrites a set's staging only after that set's last copy has completed
//      (an event recorded after the copy, synchronised by the host);
//   2. the copy into a set's device buffers waits (on the device) for the step that last
//      read them: an event recorded on the compute stream right after that step was queued;
//   3. the compute stream waits (on the device) for the copy's event before the step's kernels.
// The emulated device runs the copy stream lazily, so a missing wait 3 makes the step read
// the previous contents, and with its compute stream made lazy too a missing wait 1 or 2 shows
// (test/cuda-streams.test.ts plants them).
import { native, type CudaEvent } from '../native.js';
import { Tensor } from '../tensor.js';
import type { HostBatch } from './sources.js';
import type { Batch } from './step.js';

interface UploadSet {
  device: Batch[];
  /** Pinned staging views, one pair per micro-batch. */
  images: Float32Array[];
  ids: Int32Array[];
  /** Recorded on the copy stream after this set's uploads. */
  copied: CudaEvent;
  /** Recorded on the compute stream after the step that read this set was queued. */
  consumed: CudaEvent;
}

export class PinnedDeviceBatches implements Disposable {
  private sets: UploadSet[] = [];
  private turn = 0;

  constructor(
    readonly deviceName: string,
    readonly imageSize: number,
    readonly contextLength: number,
  ) {
    if (deviceName === 'cpu') throw new Error('PinnedDeviceBatches: uploads are for a CUDA device, got cpu');
  }

  private makeSet(parts: number, per: number): UploadSet {
    const px = 3 * this.imageSize * this.imageSize;
    const ctx = this.contextLength;
    const dev = this.deviceName;
    const device = Array.from({ length: parts }, () => ({
      images: Tensor.empty([per, 3, this.imageSize, this.imageSize], 'f32', dev),
      ids: Tensor.empty([per, ctx], 'i32', dev),
    }));
    const images = device.map(() => new Float32Array(native.cudaPinnedBuffer(per * px * 4, dev)));
    const ids = device.map(() => new Int32Array(native.cudaPinnedBuffer(per * ctx * 4, dev)));
    const consumed = native.cudaEventCreate(dev);
    // The device buffers come from the caching allocator, whose blocks are reused in the compute
    // stream's order: their last user may still be running there. The first upload into them
    // waits for the compute stream as it is now.
    native.cudaEventRecord(consumed, 'compute');
    return { device, images, ids, copied: native.cudaEventCreate(dev), consumed };
  }

  /**
   * The host batch split into `parts` equal micro-batches, uploaded into one set's device
   * tensors; the compute stream's next work waits for the upload. Call it before queueing the
   * step that reads the batch, once per step.
   */
  fill(host: HostBatch, parts: number): Batch[] {
    const per = host.n / parts;
    const px = 3 * this.imageSize * this.imageSize;
    const ctx = this.contextLength;
    const first = this.sets[0]?.device;
    if (!first || first.length !== parts || first[0].images.shape[0] !== per) {
      this.dispose();
      this.sets = [this.makeSet(parts, per), this.makeSet(parts, per)];
      this.turn = 0;
    }
    const set = this.sets[this.turn];
    const previous = this.sets[1 - this.turn];
    this.turn = 1 - this.turn;
    // Everything queued on the compute stream so far is the previous step (and older): the
    // other set's reader. Its next upload (a step from now) waits for this point.
    native.cudaEventRecord(previous.consumed, 'compute');
    // 1. The staging of this set may still be the source of its last copy.
    this.waitForStaging(set.copied);
    for (let j = 0; j < parts; j++) {
      set.images[j].set(host.images.subarray(j * per * px, (j + 1) * per * px));
      set.ids[j].set(host.tokens.subarray(j * per * ctx, (j + 1) * per * ctx));
    }
    // 2. The step that last read this set's device buffers must be done before they are overwritten.
    this.waitForReaders(set.consumed);
    for (let j = 0; j < parts; j++) {
      native.cudaUploadAsync(set.device[j].images.handle, set.images[j], 'copy');
      native.cudaUploadAsync(set.device[j].ids.handle, set.ids[j], 'copy');
    }
    native.cudaEventRecord(set.copied, 'copy');
    // 3. The step's kernels, queued next on the compute stream, start after the upload.
    this.waitForUpload(set.copied);
    return set.device;
  }

  /** The host waits until a set's last copy has read its staging (a test plants its absence). */
  protected waitForStaging(copied: CudaEvent): void {
    native.cudaEventSynchronize(copied);
  }

  /** The copy stream waits until the set's device buffers are free to overwrite (a test plants its absence). */
  protected waitForReaders(consumed: CudaEvent): void {
    native.cudaStreamWaitEvent('copy', consumed);
  }

  /** The compute stream waits for a set's upload (a test plants its absence). */
  protected waitForUpload(copied: CudaEvent): void {
    native.cudaStreamWaitEvent('compute', copied);
  }

  dispose(): void {
    for (const s of this.sets) {
      // Pending copies read the staging buffers: let them finish before the buffers can be freed.
      native.cudaEventSynchronize(s.copied);
      for (const b of s.device) {
        b.images.dispose();
        b.ids.dispose();
      }
    }
    this.sets = [];
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
