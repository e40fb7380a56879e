// Running a clipscale subcommand in-process and reading the JSON it prints.
import type { Command } from '../../lib/cli/command.js';

/** Runs `command` with `args`, expects exit code 0 and exactly one printed line of JSON, and returns it. */
export async function runJsonCommand(command: Command, args: string[]): Promise<Record<string, unknown>> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    const code = await command.run(args);
    if (code !== 0) throw new Error(`exit code ${code}`);
  } finally {
    console.log = log;
  }
  if (lines.length !== 1) throw new Error(`expected one line of JSON, got ${lines.length}`);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}
