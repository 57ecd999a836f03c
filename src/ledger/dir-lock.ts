import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerError, LedgerInUseError } from './errors.js';

const LOCK_FILE = 'tokenmeter.lock';

/** Lock files this process holds. A lock file naming this process's pid that is not in here was left by an
 * earlier process that had the same pid (a container restarted: the exporter is pid 1 again), so it is stale. */
const held = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One writer per embedded ledger directory: two processes (or two instances) on one directory would corrupt it.
 * A lock file holding the owner's pid keeps a second exporter out; a lock left by a dead process is taken over.
 * Returns the release function.
 */
export function acquireDirectoryLock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      held.add(path);
      return () => {
        held.delete(path);
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {}
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LedgerError(`cannot lock the embedded ledger in ${dir}: ${(err as Error).message}`, { cause: err });
      }
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    } catch {}
    const ours = owner === process.pid;
    if (Number.isSafeInteger(owner) && owner > 0 && (ours ? held.has(path) : processAlive(owner))) {
      throw new LedgerInUseError(
        `the embedded ledger in ${dir} is in use by process ${owner}${ours ? ' (this process)' : ''}; ` +
          `an embedded ledger serves one exporter - use a postgres:// URL to share a ledger between replicas ` +
          `(if no such process uses it, delete ${path})`,
        dir,
        owner,
        path,
      );
    }
    try {
      unlinkSync(path); // stale: its owner is gone
    } catch {}
  }
  throw new LedgerError(`cannot lock the embedded ledger in ${dir}: ${path} keeps reappearing`);
}

