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

export function intOption(command: string, name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`clipscale ${command}: --${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`clipscale ${command}: --${name} must be an integer, got '${value}'`);
  return n;
}

export function numberOption(command: string, name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`clipscale ${command}: --${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`clipscale ${command}: --${name} must be a number, got '${value}'`);
  return n;
}

export function requireOption(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`clipscale ${command}: --${name} is required`);
  return value;
}
