import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** One prepared cell of test/matrix/sdk-matrix.json, installed by scripts/sdk-matrix.mjs. */
export interface MatrixCell {
  id: string;
  suite: string;
  package: string;
  version: string;
  with: Record<string, string>;
  /** The cell's install directory (its node_modules holds the SDKs). */
  dir: string;
}

/** The cells of one suite this run was given. Throws outside `npm run test:matrix`, so nothing passes vacuously. */
export function cellsOf(suite: string): MatrixCell[] {
  const raw = process.env.SDK_MATRIX_CELLS;
  if (raw === undefined) throw new Error('SDK_MATRIX_CELLS is not set: run the matrix with `npm run test:matrix`');
  const cells = (JSON.parse(raw) as MatrixCell[]).filter((c) => c.suite === suite);
  if (cells.length === 0) throw new Error(`no ${suite} cell in SDK_MATRIX_CELLS`);
  return cells;
}

/** A test name that says which runtime and SDK version it ran on. */
export function named(cell: MatrixCell, what: string): string {
  return `${what} [${cell.id}, node ${process.version}]`;
}

/** Loads a package from the cell with a plain require (so tokenmeter's require hook sees it, version and all). */
export function requireFromCell<T = any>(cell: MatrixCell, name: string): T {
  return createRequire(join(cell.dir, 'matrix-cell.cjs'))(name) as T;
}

/** The version the cell really has installed. */
export function installedVersion(cell: MatrixCell, name: string): string {
  return (JSON.parse(readFileSync(join(cell.dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}
