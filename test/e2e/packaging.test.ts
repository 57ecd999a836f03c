/**
 * Installing into an app, as a user does it: the two packages are packed from a copy of the working tree (the
 * app-side `tokenmeter` builds on `prepare`, `tokenmeter-exporter` assembles on `prepack`), installed from their
 * tarballs into fresh directories (npm's cache first, `--prefer-offline`: nothing but the registry is reachable),
 * and the one-import app — the real openai SDK against the local mock provider — reports to the packed
 * exporter's `tokenmeter serve`. Also checks what each tarball ships, and the app-side install's size.
 *
 * The copy keeps this test's build away from the dist/ that the other e2e tests run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { addUsage, zeroUsage } from '../../src/usage/index.js';
import { findBinary } from '../helpers/binaries.js';
import { createInterface } from 'node:readline';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const git = findBinary('git');
const npm = findBinary('npm');
const isRepo = existsSync(join(ROOT, '.git'));

/*
 * The app-side install before the split (commit 0113975: one `tokenmeter` package with the exporter's
 * dependencies and @opentelemetry/sdk-node), measured as below: `npm install <tarball>` into an empty app,
 * file bytes under node_modules and installed packages. The goal is at most a third of both.
 */
const BASELINE_BYTES = 96_426_864;
const BASELINE_PACKAGES = 95;

const work = mkdtempSync(join(tmpdir(), 'tokenmeter-packaging-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** Bytes of every file under `nodeModules` (symlinks not followed) and the number of packages installed there. */
function measure(nodeModules: string): { bytes: number; packages: number } {
  let bytes = 0;
  const walk = (dir: string, depth: number): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) walk(path, depth + 1);
      else bytes += lstatSync(path).size;
    }
  };
  walk(nodeModules, 0);
  const lock = JSON.parse(readFileSync(join(dirname(nodeModules), 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  const packages = Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/')).length;
  return { bytes, packages };
}

function tarballFiles(tarball: string): string[] {
  return sh('tar', ['-tzf', tarball], work)
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.replace(/^package\//, ''));
}

/** Relative links of a markdown file that do not resolve inside the unpacked package. */
function brokenLinks(packageDir: string, markdown: string): string[] {
  const text = readFileSync(join(packageDir, markdown), 'utf8');
  const broken: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1].split('#')[0];
    if (target === '' || /^[a-z]+:/i.test(target)) continue;
    if (!existsSync(join(packageDir, dirname(markdown), target))) broken.push(`${markdown}: ${target}`);
  }
  return broken;
}

interface Serve {
  child: ChildProcess;
  otlpUrl: string;
  httpUrl: string;
}

/** The installed `tokenmeter` command's `serve` on free loopback ports; resolves once it prints its URLs. */
async function startServe(bin: string, cwd: string, storage: string): Promise<Serve> {
  const child = spawn(process.execPath, [realpathSync(bin), 'serve'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', TOKENMETER_HOST: '127.0.0.1', TOKENMETER_OTLP_PORT: '0', TOKENMETER_HTTP_PORT: '0', TOKENMETER_STORAGE: storage },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`serve exited with ${code} before listening:\n${err}`)));
  });
  const info = JSON.parse(first) as { otlpUrl: string; httpUrl: string };
  return { child, otlpUrl: info.otlpUrl, httpUrl: info.httpUrl };
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const APP = `import OpenAI from 'openai';
import { withUser } from 'tokenmeter';

const client = new OpenAI({ baseURL: process.env.MOCK_BASE_URL, apiKey: 'sk-test', maxRetries: 0 });
const chat = await withUser({ id: 'packed-user', plan: 'pro' }, () =>
  client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from a packed app' }] }),
);
// A stream that declines the usage chunk: metering it needs an estimate, and js-tiktoken is not installed.
const stream = await withUser({ id: 'packed-user', plan: 'pro' }, () =>
  client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Stream without usage' }],
    stream: true,
    stream_options: { include_usage: false },
  }),
);
let chunks = 0;
for await (const _ of stream) chunks++;
console.log(JSON.stringify({ id: chat.id, chunks }));
`;

describe.skipIf(!git || !npm || !isRepo)('the packed packages, installed into a fresh app', () => {
  let appTarball = '';
  let exporterTarball = '';
  let mock: MockProvider | undefined;
  let serve: Serve | undefined;
  const app = join(work, 'app');
  const server = join(work, 'server');

  beforeAll(async () => {
    // A copy of the working tree as git sees it (tracked and new files, nothing ignored), sharing node_modules.
    const tree = join(work, 'tree');
    const files = sh(git!, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT).split('\0').filter((f) => f.length > 0);
    for (const f of files) {
      if (!existsSync(join(ROOT, f))) continue; // deleted in the working tree
      mkdirSync(dirname(join(tree, f)), { recursive: true });
      cpSync(join(ROOT, f), join(tree, f));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'), 'dir');
    const packs = join(work, 'packs');
    mkdirSync(packs);
    // `npm pack` runs `prepare` (the build) for the root package, and the exporter's `prepack` assembles it from
    // that build (--no-build through the env: the build just ran).
    sh(npm!, ['pack', '--pack-destination', packs, '--loglevel=error'], tree);
    sh(npm!, ['pack', '-w', 'packages/exporter', '--pack-destination', packs, '--loglevel=error'], tree, { TOKENMETER_ASSEMBLE_NO_BUILD: '1' });
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    appTarball = join(packs, `tokenmeter-${version}.tgz`);
    exporterTarball = join(packs, `tokenmeter-exporter-${version}.tgz`);

    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packed-app', version: '1.0.0', private: true, type: 'module' }));
    sh(npm!, ['install', ...NPM_FLAGS, appTarball], app);
    mkdirSync(server);
    writeFileSync(join(server, 'package.json'), JSON.stringify({ name: 'packed-server', version: '1.0.0', private: true }));
    sh(npm!, ['install', ...NPM_FLAGS, exporterTarball], server);
  }, 420_000);

  afterAll(async () => {
    await stop(serve?.child);
    await mock?.close();
  });

  it('the app side installs lean: at most a third of the bytes and packages of the single package before', () => {
    const { bytes, packages } = measure(join(app, 'node_modules'));
    // Printed for the README's figure.
    console.log(`app-side install: ${(bytes / 1e6).toFixed(1)} MB in ${packages} packages (before: ${(BASELINE_BYTES / 1e6).toFixed(1)} MB in ${BASELINE_PACKAGES})`);
    expect(bytes).toBeLessThanOrEqual(BASELINE_BYTES / 3);
    expect(packages).toBeLessThanOrEqual(Math.floor(BASELINE_PACKAGES / 3));
    // None of the exporter's server, ledger or storage dependencies, and no gRPC.
    for (const name of ['pg', '@electric-sql/pglite', 'prom-client', 'protobufjs', '@grpc/grpc-js', '@opentelemetry/sdk-node', 'js-tiktoken']) {
      expect(existsSync(join(app, 'node_modules', name)), name).toBe(false);
    }
  });

  it('each tarball ships its build, LICENSE and the docs its README links to, and no source maps', () => {
    const appFiles = tarballFiles(appTarball);
    const exporterFiles = tarballFiles(exporterTarball);
    for (const files of [appFiles, exporterFiles]) {
      expect(files).toContain('LICENSE');
      expect(files).toContain('README.md');
      expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    }
    expect(readFileSync(join(app, 'node_modules', 'tokenmeter', 'LICENSE'), 'utf8')).toContain('Apache License');
    expect(appFiles).toEqual(expect.arrayContaining(['dist/index.js', 'dist/instrumentation/register.js', 'dist/instrumentation/register.cjs', 'data/price-catalog.yaml']));
    // The app side carries no exporter code.
    expect(appFiles.filter((f) => /^dist\/(exporter|ledger|ingest|cli|demo|config|dashboards|mock-provider)\//.test(f))).toEqual([]);
    expect(exporterFiles).toEqual(expect.arrayContaining(['bin/tokenmeter.js', 'dist/cli/main.js', 'dist/exporter/status-page/index.html']));
    for (const dir of [join(app, 'node_modules', 'tokenmeter'), join(server, 'node_modules', 'tokenmeter-exporter')]) {
      const docs = ['README.md', ...readdirSync(join(dir, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
      expect(docs.flatMap((d) => brokenLinks(dir, d))).toEqual([]);
    }
    // Every JavaScript file of the build that names a source map is gone with the maps.
    const js = readFileSync(join(app, 'node_modules', 'tokenmeter', 'dist', 'index.js'), 'utf8');
    expect(js).not.toContain('sourceMappingURL');
  });

  it('the one-import app reports its calls to the packed exporter, priced', { timeout: 120_000 }, async () => {
    const openaiVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'openai', 'package.json'), 'utf8')) as { version: string }).version;
    sh(npm!, ['install', ...NPM_FLAGS, `openai@${openaiVersion}`], app);
    writeFileSync(join(app, 'app.mjs'), APP);

    mock = await startMockProvider();
    const bin = join(server, 'node_modules', '.bin', 'tokenmeter');
    serve = await startServe(bin, server, join(work, 'ledger'));
    expect(serve.httpUrl.startsWith('http://127.0.0.1:')).toBe(true);

    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tokenmeter/register', 'app.mjs'], {
        cwd: app,
        env: {
          PATH: process.env.PATH ?? '',
          MOCK_BASE_URL: mock!.openaiBaseURL,
          OTEL_EXPORTER_OTLP_ENDPOINT: serve!.otlpUrl,
          OTEL_SERVICE_NAME: 'packed-app',
          OTEL_METRICS_EXPORTER: 'none',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { id: string; chunks: number };
    expect(out.chunks).toBeGreaterThan(0);
    // The stream without usage could not be estimated: said once, with the fix, never silently.
    const warnings = run.stderr.split('\n').filter((l) => l.length > 0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^tokenmeter: warning: .*js-tiktoken.*not installed.*npm install js-tiktoken/);

    // The exporter answered the export only after committing it: the usage is in the ledger now.
    const usage = (await (await fetch(`${serve.httpUrl}/api/v1/usage/packed-user`)).json()) as {
      tokens: Record<string, number>;
      requests: number;
      cost_usd: string;
    };
    const sent = mock.usageSent.filter((s) => !s.stream);
    expect(sent).toHaveLength(1);
    const total = sent.reduce((acc, s) => addUsage(acc, s.usage), zeroUsage());
    expect(usage.tokens).toMatchObject(total);
    const priced = PriceBook.load().priceStrings({ provider: 'openai', model: 'gpt-4o-mini', usage: total, at: new Date() });
    expect(priced.priced).toBe(true);
    expect(usage.cost_usd).toBe(priced.priced ? priced.totalUsd : 'unpriced');
    expect(Number(usage.cost_usd)).toBeGreaterThan(0);
  });

  it('the installed exporter runs its demo (with the provider SDKs the demo drives installed next to it)', { timeout: 180_000 }, () => {
    const version = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    sh(npm!, ['install', ...NPM_FLAGS, `openai@${version('openai')}`, `@anthropic-ai/sdk@${version('@anthropic-ai/sdk')}`], server);
    const bin = realpathSync(join(server, 'node_modules', '.bin', 'tokenmeter'));
    const demo = spawnSync(process.execPath, [bin, 'demo', '--duration', '6', '--ports', 'auto', '--data-dir', join(work, 'demo-data')], {
      cwd: server,
      env: { ...process.env, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 150_000,
    });
    const output = `${demo.stdout}${demo.stderr}`;
    expect(demo.status, output.slice(-4000)).toBe(0);
    expect(output).toMatch(/\[demo \d+s\] users=12 requests=[1-9]\d* tokens=[1-9]\d*/);
    expect(output).toContain('tokenmeter demo stopped.');
  });
});
