/**
 * The documented Next.js recipe, for real: App Router apps (test/e2e/fixtures/next/: an OpenAI-only and an
 * Anthropic-only one) built with `next build` (Turbopack, the default) and served by `next start`, with
 * `tokenmeter/register` imported from instrumentation.ts's register() and the packages in
 * serverExternalPackages. Three calls (streamed and not), then a SIGTERM 1.5 s later, as at every deploy:
 * every call must be exported, with the provider's counts and the withUser attribution.
 * Each app is built once per run (a minute or two on 2 cores) in .e2e-next/ (git-ignored).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { assertBuilt, FIXTURES, ROOT } from './fixtures/run-app.js';

const NEXT_BIN = join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');
const BUILD_ROOT = join(ROOT, '.e2e-next');
const VARIANTS = ['openai', 'anthropic'] as const;

let mock: MockProvider;
let receiver: OtlpReceiver;

function env(): Record<string, string | undefined> {
  const e: Record<string, string | undefined> = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' };
  delete e.NODE_OPTIONS;
  // Vitest's own variables would make Next.js think it runs under a test runner.
  for (const k of Object.keys(e)) if (k.startsWith('VITEST')) delete e[k];
  return e;
}

function appDir(variant: string): string {
  return join(BUILD_ROOT, variant);
}

beforeAll(async () => {
  assertBuilt();
  if (process.env.TOKENMETER_NEXT_REUSE_BUILD !== '1') rmSync(BUILD_ROOT, { recursive: true, force: true });
  for (const variant of VARIANTS) {
    // TOKENMETER_NEXT_REUSE_BUILD=1 keeps a previous build (local iteration only).
    if (process.env.TOKENMETER_NEXT_REUSE_BUILD === '1' && existsSync(join(appDir(variant), '.next'))) continue;
    // Laid out as an installed app: its own package.json, and tokenmeter as a package in its node_modules (a
    // copy of the built package). The app sits inside this repository so that Turbopack's workspace root (the
    // lockfile's folder) holds the node_modules where next, react and the SDKs resolve. (tokenmeter reached as
    // a self-reference of this repository would be bundled as app source, not kept external.)
    const dir = appDir(variant);
    cpSync(join(FIXTURES, 'next', variant), dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: `next-e2e-${variant}`, private: true })}\n`);
    const installed = join(dir, 'node_modules', 'tokenmeter');
    mkdirSync(installed, { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'));
    for (const d of ['dist', 'data']) cpSync(join(ROOT, d), join(installed, d), { recursive: true });
    const build = spawnSync(process.execPath, [NEXT_BIN, 'build'], { cwd: appDir(variant), env: env(), encoding: 'utf8', timeout: 480_000 });
    if (build.status !== 0) throw new Error(`next build of the ${variant} app failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
  }
  mock = await startMockProvider({ seed: 16 });
  receiver = await startOtlpReceiver();
}, 1_000_000);

afterAll(async () => {
  await mock?.close();
  await receiver?.close();
});

beforeEach(() => {
  receiver.requests.length = 0;
  mock.reset();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function nextStart(variant: string): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, [NEXT_BIN, 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: appDir(variant),
    env: {
      ...env(),
      MOCK_URL: mock.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: `next-${variant}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 60_000;
  while (!/Ready in/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`next start did not get ready:\n${out}`);
    await sleep(50);
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => out, exited };
}

describe.each(VARIANTS)('Next.js App Router, %s-only app, next build && next start', (variant) => {
  it('bills every call made before a SIGTERM that arrives 1.5 s later (streamed and not), with withUser attribution', async () => {
    const app = await nextStart(variant);
    const ids: string[] = [];
    for (const q of ['', '?stream=1', '']) {
      const res = await fetch(`${app.url}/api/chat${q}`);
      expect(res.status).toBe(200);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await sleep(1500);
    app.child.kill('SIGTERM');
    const exit = await app.exited;
    // Next.js ends itself on SIGTERM with exit code 143 (128 + 15); tokenmeter only delays that until its spans
    // are out.
    expect(exit).toEqual({ code: 143, signal: null });
    expect(app.output()).not.toMatch(/tokenmeter: warning/);
    expect(mock.usageSent).toHaveLength(3);
    const spans = receiver.spans().filter((s) => s.attributes['gen_ai.operation.name'] === 'chat');
    expect(spans.map((s) => s.attributes['gen_ai.response.id']).sort()).toEqual([...ids].sort());
    for (const span of spans) {
      const n = Number(/(\d+)$/.exec(String(span.attributes['gen_ai.response.id']))![1]);
      const sent = mock.usageSent.find((s) => s.requestNumber === n)!;
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(sent.usage));
      expect(span.attributes['user.id']).toBe('next-user');
      expect(span.attributes['tokenmeter.plan']).toBe('pro');
      expect(span.attributes['gen_ai.provider.name']).toBe(variant === 'openai' ? 'openai_compatible' : 'anthropic');
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }
  }, 120_000);
});
