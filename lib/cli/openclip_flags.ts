// OpenCLIP's training flags, as its users type them, mapped onto clipscale train's own:
// --train-data, --train-num-samples + --epochs, --precision amp_bf16|amp|…, --resume latest|PATH,
// --save-frequency, --lr-scheduler, --report-to, --pretrained, --logs + --name, --log-every-n-steps,
// --force-quick-gelu.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { UsageError } from './command.js';

export const OPENCLIP_TRAIN_OPTIONS = {
  'train-data': { type: 'string' },
  'train-num-samples': { type: 'string' },
  epochs: { type: 'string' },
  'save-frequency': { type: 'string' },
  'lr-scheduler': { type: 'string' },
  'report-to': { type: 'string' },
  pretrained: { type: 'string' },
  logs: { type: 'string' },
  name: { type: 'string' },
  'log-every-n-steps': { type: 'string' },
  'force-quick-gelu': { type: 'boolean' },
  // Always so here (each rank gets the exact global-batch gradient); accepted so OpenCLIP command lines run.
  'local-loss': { type: 'boolean' },
  'gather-with-grad': { type: 'boolean' },
  // clipscale's own name for --resume's value (see splitResume).
  'resume-from': { type: 'string' },
} as const;

/**
 * `--resume` alone (clipscale's form) or with a value as OpenCLIP takes it (`--resume latest`,
 * `--resume PATH`, `--resume=PATH`): the value moves to --resume-from so the option parser can
 * keep --resume a switch.
 */
export function splitResume(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--resume=')) {
      out.push('--resume', '--resume-from', a.slice('--resume='.length));
    } else if (a === '--resume' && i + 1 < argv.length && !argv[i + 1].startsWith('-')) {
      out.push('--resume', '--resume-from', argv[++i]);
    } else {
      out.push(a);
    }
  }
  return out;
}

/** OpenCLIP's --precision names → what runs here. */
export function mapPrecision(value: string | undefined, device: string): 'fp32' | 'bf16' | 'fp16' {
  const v = value ?? 'fp32';
  if (['fp32', 'pure_fp32'].includes(v)) return 'fp32';
  // amp_bf16: bf16 matrix work with fp32 master weights, which is what bf16 means here (on the CPU: the
  // AVX-512 BF16 kernel where the CPU has it, else emulated).
  if (['bf16', 'amp_bf16', 'amp_bfloat16', 'pure_bf16'].includes(v)) return 'bf16';
  if (['amp', 'fp16', 'pure_fp16'].includes(v)) {
    // OpenCLIP's amp is fp16 autocast with GradScaler: fp16 matrix work, fp32 master weights and
    // dynamic loss scaling (on by default with fp16). The CPU has no fp16 emulation.
    if (device === 'cpu') {
      throw new UsageError(
        `clipscale train: --precision ${v} (fp16) is not offered on the CPU: it trains in fp32 or bf16 (rounding where a GPU would; ` +
          'AVX-512 BF16 where the CPU has it); use --device cuda for fp16, or --precision amp_bf16 (with --loss-scaling dynamic for loss scaling)',
      );
    }
    return 'fp16';
  }
  throw new UsageError(`clipscale train: --precision must be one of fp32, amp_bf16 (= bf16), bf16, pure_bf16, amp (= fp16), fp16, got '${v}'`);
}

/** --report-to: 'tensorboard' (or 'all'); wandb cannot work here (no network at run time). */
export function parseReportTo(value: string | undefined): 'tensorboard'[] {
  if (value === undefined || value.trim() === '' || value === 'none') return [];
  const out: 'tensorboard'[] = [];
  for (const part of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (part === 'tensorboard' || part === 'all') out.push('tensorboard');
    else if (part === 'wandb') throw new UsageError("clipscale train: --report-to wandb is not supported (clipscale makes no network connections); use --report-to tensorboard");
    else throw new UsageError(`clipscale train: --report-to must be tensorboard (or all), got '${part}'`);
  }
  return [...new Set(out)];
}

/** OpenCLIP's --pretrained is a tag it downloads or a file; here only a local file or run folder. */
export function checkPretrained(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!existsSync(value)) {
    throw new UsageError(
      `clipscale train: --pretrained '${value}' is not a file or folder here. clipscale downloads nothing: give a local OpenCLIP ` +
        "safetensors file (e.g. open_clip_model.safetensors from the model's Hugging Face page) or a checkpoint of clipscale train",
    );
  }
  return value;
}

/** --logs DIR --name NAME is OpenCLIP's run folder DIR/NAME; --out names it directly. */
export function runFolder(out: string | undefined, logs: string | undefined, name: string | undefined): string | undefined {
  if (out !== undefined && (logs !== undefined || name !== undefined)) throw new UsageError('clipscale train: give --out DIR, or OpenCLIP\'s --logs DIR --name NAME, not both');
  if (name !== undefined && logs === undefined) return join('logs', name);
  if (logs !== undefined) {
    if (name === undefined) throw new UsageError("clipscale train: --logs DIR needs --name NAME (the run's folder is DIR/NAME)");
    return join(logs, name);
  }
  return out;
}

/** The run folder `--resume PATH` continues in when --out is not given: the folder itself, or the checkpoint's. */
export function folderOfResumePath(path: string, isDir: boolean): string {
  return isDir ? path : dirname(path);
}
