// Small helpers for reading command-line options with clear errors.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError } from './command.js';
import { unknownOptionHint } from './suggest.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** The parsed values of an option spec: strings, booleans, or arrays where `multiple` is set. */
export type OptionValues<O> = {
  [K in keyof O]?: O[K] extends { multiple: true }
    ? O[K] extends { type: 'boolean' } ? boolean[] : string[]
    : O[K] extends { type: 'boolean' } ? boolean : string;
};

export function parse<O extends OptionSpec>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals = false,
): { values: OptionValues<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: r.values as OptionValues<O>, positionals: r.positionals };
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(`clipscale ${command}: ${message}${unknownOptionHint(message, Object.keys(options))}`);
  }
}

export interface IntBounds {
  /** Smallest accepted value (default 0). */
  min?: number;
  /** Largest accepted value (default 2^31 − 1: counts and sizes beyond it cannot be allocated anyway). */
  max?: number;
}

/** The default upper bound of an integer option. */
export const MAX_INT_OPTION = 2 ** 31 - 1;

/**
 * An integer option: only safe integers within [min, max] (checked here, before anything is sized by
 * it), else a UsageError (exit 2) that names the option, the value and the range.
 */
export function intOption(command: string, name: string, value: string | undefined, fallback?: number, bounds: IntBounds = {}): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`clipscale ${command}: --${name} is required`);
    return fallback;
  }
  const min = bounds.min ?? 0;
  const max = bounds.max ?? MAX_INT_OPTION;
  const text = value.trim();
  const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`clipscale ${command}: --${name} must be an integer, got '${value}' (accepted: ${min}..${max})`);
  if (n < min || n > max) throw new UsageError(`clipscale ${command}: --${name} must be an integer in [${min}, ${max}], got ${n}`);
  return n;
}

export interface NumberBounds {
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
  /** Values must be strictly greater than this. */
  above?: number;
  /** Values must be strictly less than this. */
  below?: number;
}

function describeBounds(b: NumberBounds): string {
  const parts: string[] = [];
  if (b.min !== undefined) parts.push(`≥ ${b.min}`);
  if (b.above !== undefined) parts.push(`> ${b.above}`);
  if (b.max !== undefined) parts.push(`≤ ${b.max}`);
  if (b.below !== undefined) parts.push(`< ${b.below}`);
  return parts.length ? ` ${parts.join(' and ')}` : '';
}

/** A finite number option within the given bounds, else a UsageError (exit 2). */
export function numberOption(command: string, name: string, value: string | undefined, fallback?: number, bounds: NumberBounds = {}): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`clipscale ${command}: --${name} is required`);
    return fallback;
  }
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`clipscale ${command}: --${name} must be a number, got '${value}'`);
  const ok =
    (bounds.min === undefined || n >= bounds.min) &&
    (bounds.max === undefined || n <= bounds.max) &&
    (bounds.above === undefined || n > bounds.above) &&
    (bounds.below === undefined || n < bounds.below);
  if (!ok) throw new UsageError(`clipscale ${command}: --${name} must be a number${describeBounds(bounds)}, got ${n}`);
  return n;
}

export function requireOption(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`clipscale ${command}: --${name} is required`);
  return value;
}
