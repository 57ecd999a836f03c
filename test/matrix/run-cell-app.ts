import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MatrixCell } from './cells.js';

const APPS = join(dirname(fileURLToPath(import.meta.url)), 'apps');

export interface CellAppRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs test/matrix/apps/<file> as a child process from inside the cell's directory, so its bare imports resolve
 * to the cell's SDKs (and `tokenmeter` to this package, by self-reference, as dist/).
 */
export function runCellApp(cell: MatrixCell, file: string, nodeArgs: string[], env: Record<string, string>): Promise<CellAppRun> {
  copyFileSync(join(APPS, file), join(cell.dir, file));
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    delete childEnv.NODE_OPTIONS;
    delete childEnv.SDK_MATRIX_CELLS;
    const child = spawn(process.execPath, [...nodeArgs, join(cell.dir, file)], { cwd: cell.dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
