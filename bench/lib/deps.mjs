// Installs a pinned set of packages into bench/.deps/<name> (git-ignored) for benchmark children that must run
// other releases than the project's own dev dependencies: the newest SDKs and peer instrumentations, some of
// which require a newer Node than the project's floor and so cannot sit in package.json. Installed from the
// registry with the ordinary npm client, once; reused while the pinned list is unchanged.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Returns the directory whose node_modules holds exactly `packages` ({ name: exactVersion }). */
export function ensureDeps(name, packages, log = () => {}) {
  const dir = join(ROOT, 'bench', '.deps', name);
  const manifest = { name: `tokenmeter-bench-${name}`, private: true, dependencies: packages };
  const wanted = `${JSON.stringify(manifest, null, 2)}\n`;
  const stamp = join(dir, '.installed');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return dir;
  log(`installing ${Object.entries(packages).map(([p, v]) => `${p}@${v}`).join(' ')} into bench/.deps/${name}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), wanted);
  try {
    // --engine-strict off: these packages are run by the child's Node (e.g. 24), not by the Node running npm.
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', '--engine-strict=false'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`npm install in bench/.deps/${name} failed: ${String(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' ')}`, { cause: err });
  }
  writeFileSync(stamp, wanted);
  return dir;
}
