import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  otlpUrl: string;
  httpUrl: string;
  stderr(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `node dist/cli/main.js serve` on free loopback ports; resolves once it prints its URLs. */
export async function spawnServe(env: Record<string, string>, args: string[] = [], cwd?: string, fileLimit?: number): Promise<ServeProcess> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  // With `fileLimit`, the process runs under that open-file limit (the shell's ulimit, then exec).
  const [cmd, argv] =
    fileLimit === undefined
      ? [process.execPath, [BIN, 'serve', ...args]]
      : ['/bin/sh', ['-c', `ulimit -n ${fileLimit} && exec "$0" "$@"`, process.execPath, BIN, 'serve', ...args]];
  const child = spawn(cmd, argv, {
    env: { PATH: process.env.PATH ?? '', TOKENMETER_HOST: '127.0.0.1', TOKENMETER_OTLP_PORT: '0', TOKENMETER_HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`serve exited with ${code} before listening:\n${err}`)));
  });
  const info = JSON.parse(first) as { otlpUrl: string; httpUrl: string };
  return {
    child,
    otlpUrl: info.otlpUrl,
    httpUrl: info.httpUrl,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
