/**
 * Starts a real PostgreSQL 15 (Debian's packages) in a temporary directory on a free loopback port, for tests.
 * PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinary } from './binaries.js';

const run = promisify(execFile);

export const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

/** The pg_ctl path, or undefined outside CI when PostgreSQL is not installed (use with `describe.skipIf`). */
export function findPostgres(): string | undefined {
  return requireBinary('pg_ctl', [`${PG_BIN_DIR}/pg_ctl`]);
}

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (fast shutdown: open connections are terminated). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Creates a fresh database and returns its URL (isolates test suites sharing one server). */
  createDatabase(name: string): Promise<string>;
  /** Stops the server if running and deletes the directory. */
  cleanup(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

async function runPg(bin: string, args: string[]): Promise<string> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

/** initdb + pg_ctl start in a fresh temp directory with trust auth on 127.0.0.1. */
export async function startPostgres(): Promise<TestPostgres> {
  const pgCtl = findPostgres();
  if (!pgCtl) throw new Error('PostgreSQL 15 is not installed');
  const binDir = pgCtl.replace(/\/pg_ctl$/, '');
  const root = mkdtempSync(join(tmpdir(), 'tokenmeter-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  mkdirSync(socketDir);
  if (isRoot) {
    const uid = idOf('-u', 'postgres');
    const gid = idOf('-g', 'postgres');
    chownSync(root, uid, gid);
    chownSync(socketDir, uid, gid);
  }
  await runPg(`${binDir}/initdb`, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const logFile = join(root, 'server.log');
  const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  let running = false;
  const start = async () => {
    await runPg(pgCtl, ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    await runPg(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
    running = false;
  };
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dataDir,
    start,
    stop,
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      await runPg(`${binDir}/psql`, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async cleanup() {
      try {
        await stop();
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

function idOf(flag: '-u' | '-g', user: string): number {
  // `id` is always present; avoids parsing /etc/passwd by hand.
  return Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
}
