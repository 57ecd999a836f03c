import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The status page shipped next to this module (copied to dist/ by the build). */
export const STATUS_PAGE_DIR = fileURLToPath(new URL('./status-page/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface StaticFile {
  body: Buffer;
  contentType: string;
}

/**
 * Serves files from one folder: only the listed types, only regular files whose real path stays inside the
 * folder (no `..`, no encoded separators, no symlink out), `/` → index.html. Returns undefined for anything else.
 */
export class StaticFiles {
  private root: string | undefined;

  constructor(private readonly dir: string = STATUS_PAGE_DIR) {}

  async get(urlPath: string): Promise<StaticFile | undefined> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (decoded === '/' || decoded === '') decoded = '/index.html';
    if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return undefined;
    const segments = decoded.slice(1).split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith('.'))) return undefined;
    const type = CONTENT_TYPES[extname(decoded).toLowerCase()];
    if (!type) return undefined;
    try {
      this.root ??= await realpath(this.dir);
      const real = await realpath(join(this.root, ...segments));
      if (!real.startsWith(this.root + sep)) return undefined;
      const st = await stat(real);
      if (!st.isFile() || st.size > 5 * 1024 * 1024) return undefined;
      return { body: await readFile(real), contentType: type };
    } catch {
      return undefined;
    }
  }
}
