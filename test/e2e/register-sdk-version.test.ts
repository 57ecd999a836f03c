import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, useE2eServers, type AppRun } from './fixtures/run-app.js';

/*
 * Never silent: an app whose provider SDK is outside the tested ranges, or cannot be instrumented, is told so
 * once on stderr at start, and otherwise behaves exactly as without tokenmeter (same output, same exit code).
 * The SDKs here are fakes in a temp node_modules, named like the real packages.
 */

const e2e = useE2eServers(23);
let dir: string;

// A stand-in with the shape tokenmeter looks for (OpenAI.Chat.Completions.prototype.create).
const FAKE_OPENAI = `
class Completions { create(params) { return Promise.resolve({ id: 'fake-' + params.model, choices: [] }); } }
class Chat {}
Chat.Completions = Completions;
class OpenAI { constructor() { this.chat = { completions: new Completions() }; } }
OpenAI.Chat = Chat;
OpenAI.OpenAI = OpenAI;
OpenAI.default = OpenAI;
module.exports = OpenAI;
`;
// An in-range version without anything tokenmeter can wrap.
const FAKE_ANTHROPIC = `
class Anthropic { constructor() { this.messages = { create: () => Promise.resolve({ id: 'msg-fake' }) }; } }
Anthropic.default = Anthropic;
module.exports = Anthropic;
`;

const APP_ESM = `
import OpenAI from 'openai';
import { createRequire } from 'node:module';
const again = createRequire(import.meta.url)('openai');
const res = await new OpenAI().chat.completions.create({ model: 'm1' });
const res2 = await new again().chat.completions.create({ model: 'm2' });
process.stdout.write(res.id + ' ' + res2.id);
process.exitCode = 3;
`;
const APP_FIRST_IMPORT = `import 'tokenmeter/register';\n${APP_ESM}`;
const APP_CJS = `
const Anthropic = require('@anthropic-ai/sdk');
new Anthropic().messages.create({}).then((m) => { process.stdout.write(m.id); process.exitCode = 4; });
`;

function pkg(name: string, version: string, source: string): void {
  const d = join(dir, 'node_modules', name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
  writeFileSync(join(d, 'index.js'), source);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tokenmeter-sdk-version-'));
  pkg('openai', '99.0.0', FAKE_OPENAI);
  pkg('@anthropic-ai/sdk', '1.2.0', FAKE_ANTHROPIC);
  // As an app installs it: node_modules/tokenmeter (a link to this package).
  symlinkSync(ROOT, join(dir, 'node_modules', 'tokenmeter'), 'dir');
  writeFileSync(join(dir, 'app.mjs'), APP_ESM);
  writeFileSync(join(dir, 'first-import-app.mjs'), APP_FIRST_IMPORT);
  writeFileSync(join(dir, 'app.cjs'), APP_CJS);
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function run(nodeArgs: string[], file: string, extraEnv: Record<string, string> = {}): Promise<AppRun> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      ...extraEnv,
    };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [...nodeArgs, file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const OUT_OF_RANGE =
  'tokenmeter: warning: openai 99.0.0 is outside the versions tokenmeter is tested with (openai >=5.0.0 <8); its calls are ' +
  'instrumented best-effort and may be metered wrongly or not at all. Install openai >=5.0.0 <8, or a tokenmeter release ' +
  'that supports this version.\n';

describe(`provider SDK versions outside the tested ranges (node ${process.version})`, () => {
  it('node --import tokenmeter/register: one warning line for openai 99.0.0 loaded twice (import and require); output and exit code unchanged', async () => {
    const plain = await run([], 'app.mjs');
    expect(plain).toMatchObject({ code: 3, stdout: 'fake-m1 fake-m2', stderr: '' });
    const metered = await run(['--import', 'tokenmeter/register'], 'app.mjs');
    expect(metered.stderr).toBe(OUT_OF_RANGE);
    expect(metered.stdout).toBe(plain.stdout);
    expect(metered.code).toBe(3);
    // Best-effort: the fake has the shape tokenmeter wraps, so its calls still became spans (without usage).
    expect(e2e.receiver.spans().map((s) => s.attributes['gen_ai.request.model'])).toEqual(['m1', 'm2']);
  });

  it("import 'tokenmeter/register' as the app's first import reads the installed version and warns the same way", async () => {
    const metered = await run([], 'first-import-app.mjs');
    expect(metered.stderr).toBe(OUT_OF_RANGE);
    expect(metered.stdout).toBe('fake-m1 fake-m2');
    expect(metered.code).toBe(3);
  });

  it('node --require tokenmeter/register: an in-range SDK that cannot be instrumented is reported as not metered; output and exit code unchanged', async () => {
    const plain = await run([], 'app.cjs');
    expect(plain).toMatchObject({ code: 4, stdout: 'msg-fake', stderr: '' });
    const metered = await run(['--require', 'tokenmeter/register'], 'app.cjs');
    expect(metered.stderr).toBe(
      'tokenmeter: warning: could not instrument @anthropic-ai/sdk 1.2.0 (its client class or create() methods were not found); ' +
        'its calls are NOT metered. tokenmeter supports @anthropic-ai/sdk >=0.50.1 <2: install a version in that range, or report this with the version.\n',
    );
    expect(metered.stdout).toBe(plain.stdout);
    expect(metered.code).toBe(4);
  });

  it('says nothing with OTEL_SDK_DISABLED=true', async () => {
    const metered = await run(['--import', 'tokenmeter/register'], 'app.mjs', { OTEL_SDK_DISABLED: 'true' });
    expect(metered).toMatchObject({ code: 3, stdout: 'fake-m1 fake-m2', stderr: '' });
  });
});
