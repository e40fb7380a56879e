#!/usr/bin/env node
// The `clipscale` command: finds subcommands in ./commands and runs one.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { UsageError, type Command } from './command.js';

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

async function loadCommand(name: string): Promise<Command | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  const mod = (await import(pathToFileURL(join(commandsDir, name + ext)).href)) as { command: Command };
  return mod.command;
}

async function help(): Promise<string> {
  const lines = ['usage: clipscale <command> [options]', '', 'commands:'];
  for (const name of commandNames()) {
    const c = await loadCommand(name);
    if (c) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  }
  lines.push('', "Run 'clipscale help <command>' for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    if (name === 'help' && rest[0]) {
      const c = await loadCommand(rest[0]);
      if (!c) throw new UsageError(`clipscale: unknown command '${rest[0]}'`);
      console.log(c.usage);
      return 0;
    }
    console.log(await help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const { version } = await import('../version.js');
    console.log(version);
    return 0;
  }
  const command = await loadCommand(name);
  if (!command) throw new UsageError(`clipscale: unknown command '${name}'. Run 'clipscale help' for the list.`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  return (await command.run(rest)) ?? 0;
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(err.message);
        process.exitCode = 2;
      } else {
        // Messages that already name the command ("clipscale train: …") are not prefixed again.
        const message = err instanceof Error ? (err.message.startsWith('clipscale') ? err.message : `clipscale: ${err.message}`) : undefined;
        console.error(err instanceof Error ? (process.env.CLIPSCALE_DEBUG ? err.stack : message) : err);
        process.exitCode = 1;
      }
    },
  );
}
