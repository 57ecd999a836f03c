// Starts Debian's PostgreSQL 15 in a temporary directory on a free loopback port (as the `postgres` user when run as
// root, since PostgreSQL refuses root), like test/helpers/postgres.ts does. Unlike the tests, fsync stays ON: the
// benchmark measures durable commits.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export function postgresAvailable() {
  return existsSync(join(PG_BIN_DIR, 'pg_ctl'));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function runPg(bin, args) {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 120_000 });
    return stdout;
  } catch (err) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`, { cause: err });
  }
}

export async function startPostgres() {
  const root = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  mkdirSync(socketDir);
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
    chownSync(socketDir, uid, gid);
  }
  await runPg(join(PG_BIN_DIR, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c max_connections=50`;
  await runPg(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-l', join(root, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
  let dbs = 0;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    version: (await runPg(join(PG_BIN_DIR, 'postgres'), ['--version'])).trim(),
    /** A fresh database (each benchmark run starts from an empty ledger). */
    async createDatabase() {
      const name = `bench_${++dbs}`;
      await runPg(join(PG_BIN_DIR, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    /** Bytes the database uses on disk (pg_database_size). */
    async databaseSize(url) {
      const name = new URL(url).pathname.slice(1);
      const out = await runPg(join(PG_BIN_DIR, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-At', '-c', `SELECT pg_database_size('${name}')`]);
      return Number(out.trim());
    },
    async cleanup() {
      try {
        await runPg(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
