// Runs a benchmark module in its own Node process and collects the one JSON result it sends back.
import { fork } from 'node:child_process';

/**
 * Forks `modulePath` with `args` (on another Node binary with `execPath`); the child sends exactly one `{ result }`
 * or `{ error }` message.
 * Rejects on a non-zero exit, a child error or the timeout.
 */
export function runChild(modulePath, args, { execArgv = [], env = {}, timeoutMillis = 600_000, execPath } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(modulePath, args, {
      execArgv,
      ...(execPath ? { execPath } : {}),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let settled = false;
    let message;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${modulePath} ${args.join(' ')}: timed out after ${timeoutMillis} ms`));
    }, timeoutMillis);
    function finish(err, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    }
    child.on('message', (m) => {
      message = m;
    });
    child.on('error', (err) => finish(err));
    child.on('exit', (code, signal) => {
      if (message?.error) finish(new Error(`${modulePath} ${args.join(' ')}: ${message.error}`));
      else if (code !== 0) finish(new Error(`${modulePath} ${args.join(' ')}: exited with ${code ?? signal}`));
      else if (message?.result === undefined) finish(new Error(`${modulePath} ${args.join(' ')}: sent no result`));
      else finish(undefined, message.result);
    });
  });
}

/**
 * In a child: runs `main`, sends its result (or error) to the parent, then exits. Started without an IPC channel
 * (by hand, or under valgrind by instructions.mjs) it prints the result as one JSON line instead.
 */
export async function childMain(main) {
  if (process.send === undefined) {
    const result = await main();
    process.stdout.write(`${JSON.stringify({ result })}\n`, () => process.exit(0));
    return;
  }
  try {
    const result = await main();
    await new Promise((r) => process.send({ result }, r));
    process.exit(0);
  } catch (err) {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    await new Promise((r) => process.send({ error: text }, r));
    process.exit(1);
  }
}
