// The shape of a `clipscale` subcommand. Each lives in its own file under
// cli/commands/ and exports `command`; main.ts finds them by file name.
export interface Command {
  /** The word after `clipscale`, the same as the file name. */
  name: string;
  /** One line for `clipscale help`. */
  summary: string;
  /** Full usage text for `clipscale help NAME` and `--help`. */
  usage: string;
  run(argv: string[]): Promise<number | void>;
}

/** An error the CLI prints as a message (no stack) with exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
