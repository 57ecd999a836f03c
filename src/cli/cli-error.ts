/** An error the CLI reports as one line on stderr with the given exit code (2 = bad usage or input). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface CommandModule {
  /** Runs the command with its own arguments; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}
