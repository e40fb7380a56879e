// What a run records about itself before it starts: params.txt as OpenCLIP writes it (every setting,
// `name: value` a line, sorted), with the versions and the model config, and a one-line header for people.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { native } from '../native.js';
import type { Trainer } from '../train/trainer.js';
import { version } from '../version.js';

/** Versions that describe the build, without git (an installed package has none). */
export function versions(): Record<string, string> {
  const build = native.buildInfo();
  return {
    clipscale_version: version,
    node_version: process.version,
    napi_version: String(process.versions.napi),
    platform: `${process.platform}-${process.arch}`,
    cpu_gemm_kernel: build.gemmKernel ?? 'portable',
    ...(build.compiler ? { compiler: build.compiler } : {}),
  };
}

/** The settings of a run: the options as given (dashes → underscores), then the effective values. */
export function runParams(options: Record<string, unknown>, trainer: Trainer): Record<string, unknown> {
  const h = trainer.optimizer.hyper;
  const o = trainer.options;
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) params[k.replace(/-/g, '_')] = v;
  Object.assign(params, {
    lr: h.lr,
    wd: h.weightDecay,
    beta1: h.beta1,
    beta2: h.beta2,
    eps: h.eps,
    batch_size: o.batchSize,
    world_size: trainer.world,
    global_batch_size: trainer.globalBatch,
    samples: o.samples,
    total_steps: trainer.totalSteps,
    warmup: trainer.schedule.warmupSteps,
    lr_scheduler: trainer.schedule.name,
    precision: o.precision ?? 'fp32',
    seed: o.seed ?? 0,
    accum_freq: o.accumFreq,
    model_params: trainer.model.parameters().reduce((n, p) => n + p.numel, 0),
    model_config: JSON.stringify(trainer.model.config),
    ...versions(),
  });
  return params;
}

/** OpenCLIP's params.txt: `name: value` lines in sorted order. */
export function formatParams(params: Record<string, unknown>): string {
  return Object.keys(params)
    .sort()
    .map((k) => `${k}: ${typeof params[k] === 'string' ? params[k] : JSON.stringify(params[k])}\n`)
    .join('');
}

export function writeParams(dir: string, params: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'params.txt');
  writeFileSync(path, formatParams(params));
  return path;
}

/** "clipscale 0.1.0 (Node v20.20.2, linux-x64, avx512) · tiny, 1.23M params · 100 steps × 128 · fp32 · runs/tiny" */
export function headerLine(trainer: Trainer, out: string | undefined): string {
  const v = versions();
  const cfg = trainer.model.config as { name?: string };
  const nParams = trainer.model.parameters().reduce((n, p) => n + p.numel, 0);
  const millions = nParams >= 1e6 ? `${(nParams / 1e6).toPrecision(3)}M` : `${(nParams / 1e3).toPrecision(3)}k`;
  return [
    `clipscale ${v.clipscale_version} (Node ${v.node_version}, ${v.platform}, CPU GEMM ${v.cpu_gemm_kernel})`,
    `model ${cfg.name ?? 'custom'}, ${millions} params`,
    `${trainer.totalSteps} steps × ${trainer.globalBatch} samples${trainer.world > 1 ? ` (${trainer.world} ranks)` : ''}`,
    trainer.options.precision ?? 'fp32',
    out ? `out ${out}` : 'no --out (nothing saved)',
  ].join(' · ');
}
