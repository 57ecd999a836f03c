import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_STORAGE,
  MAX_CONFIG_FILE_BYTES,
  loadConfig,
  redactStorage,
  renderConfigReference,
  renderEffectiveConfig,
  validateConfig,
} from '../../src/config/index.js';

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'tm-config-'));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('runs on the defaults with no file at all', () => {
    const loaded = loadConfig({ cwd: dir(), env: {} });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config.storage).toBe(DEFAULT_STORAGE);
    expect(loaded.config.storage).toBe('./.tokenmeter/ledger');
    expect(loaded.config.server).toEqual({ host: '0.0.0.0', otlp_port: 4318, http_port: 9464, shutdown_timeout: 10_000, headers_timeout: 10_000, keep_alive_timeout: 5_000 });
    expect(loaded.config.ledger.dedup_window).toBe(7 * 24 * 3600 * 1000);
    expect(loaded.config.ledger.refresh_interval).toBe(15_000);
    expect(loaded.config.limits.max_request_bytes).toBe(8 * 1024 * 1024);
    expect(loaded.config.auth).toEqual({});
  });

  it('picks up ./tokenmeter.yaml when present', () => {
    const d = dir();
    writeFileSync(join(d, 'tokenmeter.yaml'), 'storage: /var/lib/tm\n');
    const loaded = loadConfig({ cwd: d, env: {} });
    expect(loaded.file).toBe('tokenmeter.yaml');
    expect(loaded.config.storage).toBe('/var/lib/tm');
  });
});

describe('precedence: flag > environment > file > default', () => {
  const cases: { name: string; file?: number; env?: string; flag?: string; expected: number; source?: string }[] = [
    { name: 'default only', expected: 4318 },
    { name: 'file only', file: 1001, expected: 1001 },
    { name: 'env over file', file: 1001, env: '1002', expected: 1002, source: 'environment variable TOKENMETER_OTLP_PORT' },
    { name: 'env over default', env: '1002', expected: 1002, source: 'environment variable TOKENMETER_OTLP_PORT' },
    { name: 'flag over env and file', file: 1001, env: '1002', flag: '1003', expected: 1003, source: 'flag --otlp-port' },
    { name: 'flag over file', file: 1001, flag: '1003', expected: 1003, source: 'flag --otlp-port' },
    { name: 'empty env is unset', file: 1001, env: '', expected: 1001 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = dir();
      if (c.file !== undefined) writeFileSync(join(d, 'tokenmeter.yaml'), `server:\n  otlp_port: ${c.file}\n`);
      const loaded = loadConfig({
        cwd: d,
        env: c.env !== undefined ? { TOKENMETER_OTLP_PORT: c.env } : {},
        flags: c.flag !== undefined ? { 'otlp-port': c.flag } : {},
      });
      expect(loaded.config.server.otlp_port).toBe(c.expected);
      expect(loaded.overrides['server.otlp_port']).toBe(c.source);
    });
  }

  it('--config beats TOKENMETER_CONFIG beats ./tokenmeter.yaml', () => {
    const d = dir();
    writeFileSync(join(d, 'tokenmeter.yaml'), 'storage: from-default-file\n');
    writeFileSync(join(d, 'env.yaml'), 'storage: from-env-file\n');
    writeFileSync(join(d, 'flag.yaml'), 'storage: from-flag-file\n');
    expect(loadConfig({ cwd: d, env: {} }).config.storage).toBe('from-default-file');
    expect(loadConfig({ cwd: d, env: { TOKENMETER_CONFIG: 'env.yaml' } }).config.storage).toBe('from-env-file');
    expect(loadConfig({ cwd: d, env: { TOKENMETER_CONFIG: 'env.yaml' }, configPath: 'flag.yaml' }).config.storage).toBe('from-flag-file');
  });

  it('every documented environment variable overrides its setting', () => {
    const env = {
      TOKENMETER_STORAGE: 'postgres://tm:pw@127.0.0.1:5432/tm',
      TOKENMETER_HOST: '127.0.0.1',
      TOKENMETER_OTLP_PORT: '0',
      TOKENMETER_HTTP_PORT: '0',
      TOKENMETER_INGEST_TOKEN: 'ingest-token-0123456789',
      TOKENMETER_API_TOKEN: 'api-token-0123456789',
      TOKENMETER_MAX_REQUEST_BYTES: '1MiB',
      TOKENMETER_MAX_DECOMPRESSED_BYTES: '2097152',
      TOKENMETER_MAX_USERS: '50',
      TOKENMETER_DEDUP_WINDOW: '2d',
      TOKENMETER_REFRESH_INTERVAL: '1s',
      TOKENMETER_DISPLAY_CURRENCY: 'EUR',
    };
    const c = loadConfig({ cwd: dir(), env }).config;
    expect(c.storage).toBe('postgres://tm:pw@127.0.0.1:5432/tm');
    expect(c.server.host).toBe('127.0.0.1');
    expect(c.server.otlp_port).toBe(0);
    expect(c.server.http_port).toBe(0);
    expect(c.auth.ingest_token).toBe('ingest-token-0123456789');
    expect(c.auth.api_token).toBe('api-token-0123456789');
    expect(c.limits.max_request_bytes).toBe(1024 * 1024);
    expect(c.limits.max_decompressed_bytes).toBe(2097152);
    expect(c.limits.max_users).toBe(50);
    expect(c.ledger.dedup_window).toBe(2 * 86_400_000);
    expect(c.ledger.refresh_interval).toBe(1000);
    expect(c.display.currency).toBe('EUR');
  });
});

describe('errors name the file (or variable/flag), the path and what was expected', () => {
  it('the issue example', () => {
    expect(problemsOf(() => validateConfig({ plans: { pro: { limits: { tokens: 'lots' } } } }, 'tokenmeter.yaml'))).toContain(
      'tokenmeter.yaml: plans.pro.limits.tokens: expected a non-negative integer or null, got "lots"',
    );
    const d = dir();
    writeFileSync(join(d, 'tokenmeter.yaml'), 'plans:\n  pro:\n    limits:\n      tokens: lots\n');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {} }))).toEqual(['tokenmeter.yaml: plans.pro.limits.tokens: expected a non-negative integer or null, got "lots"']);
  });

  it('reports from a real file with several problems at once', () => {
    const d = dir();
    writeFileSync(
      join(d, 'bad.yaml'),
      ['server:', '  otlp_port: 70000', '  hots: 127.0.0.1', 'ledger:', '  dedup_window: 7 days', 'limits:', '  max_users: -1', 'strage: ./x', ''].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'bad.yaml' }));
    expect(problems).toEqual(
      expect.arrayContaining([
        'bad.yaml: server.otlp_port: expected an integer from 0 to 65535, got 70000',
        'bad.yaml: server.hots: unknown key (expected one of: host, otlp_port, http_port, shutdown_timeout, max_connections, headers_timeout, keep_alive_timeout)',
        'bad.yaml: ledger.dedup_window: expected a duration such as "500ms", "15s", "30m", "2h", "7d" or "1w", got "7 days"',
        'bad.yaml: limits.max_users: expected a positive integer, got -1',
      ]),
    );
    expect(problems.some((p) => p.startsWith('bad.yaml: strage: unknown key'))).toBe(true);
  });

  it('unknown keys are errors at every level, including sub-schemas of other modules', () => {
    expect(problemsOf(() => validateConfig({ auth: { api_tokn: 'x' } }, 'f.yaml'))[0]).toMatch(/^f\.yaml: auth\.api_tokn: unknown key/);
    expect(problemsOf(() => validateConfig({ display: { currency: 'EUR', rate: {} } }, 'f.yaml'))[0]).toMatch(/^f\.yaml: display\.rate: unknown key/);
    const nested = problemsOf(() => validateConfig({ pricing: { overrides: [{ provider: 'openai', model: 'x', prices_usd_per_mtok: { input: '1', outptu: '2' } }] } }, 'f.yaml'));
    expect(nested.join('\n')).toMatch(/f\.yaml: pricing\.overrides\[0\]\.prices_usd_per_mtok\.outptu: unknown key/);
  });

  it('ingest.worker_threads: default 1, file < TOKENMETER_INGEST_WORKER_THREADS < --ingest-worker-threads, 0 to 16', () => {
    const d = dir();
    expect(loadConfig({ cwd: d, env: {} }).config.ingest.worker_threads).toBe(1);
    writeFileSync(join(d, 'tokenmeter.yaml'), 'ingest:\n  worker_threads: 2\n');
    expect(loadConfig({ cwd: d, env: {} }).config.ingest.worker_threads).toBe(2);
    expect(loadConfig({ cwd: d, env: { TOKENMETER_INGEST_WORKER_THREADS: '0' } }).config.ingest.worker_threads).toBe(0);
    const flagged = loadConfig({ cwd: d, env: { TOKENMETER_INGEST_WORKER_THREADS: '0' }, flags: { 'ingest-worker-threads': '3' } });
    expect(flagged.config.ingest.worker_threads).toBe(3);
    expect(flagged.overrides['ingest.worker_threads']).toBe('flag --ingest-worker-threads');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, flags: { 'ingest-worker-threads': '17' } }))[0]).toMatch(/^flag --ingest-worker-threads: ingest\.worker_threads: /);
    expect(problemsOf(() => loadConfig({ cwd: d, env: { TOKENMETER_INGEST_WORKER_THREADS: 'many' } }))[0]).toMatch(/^environment variable TOKENMETER_INGEST_WORKER_THREADS: ingest\.worker_threads: /);
    writeFileSync(join(d, 'tokenmeter.yaml'), 'ingest:\n  worker_threads: -1\n');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {} }))[0]).toMatch(/^tokenmeter\.yaml: ingest\.worker_threads: /);
  });

  it('an environment variable error names the variable, a flag error names the flag', () => {
    expect(problemsOf(() => loadConfig({ cwd: dir(), env: { TOKENMETER_OTLP_PORT: 'abc' } }))).toEqual([
      'environment variable TOKENMETER_OTLP_PORT: server.otlp_port: expected an integer from 0 to 65535, got "abc"',
    ]);
    expect(problemsOf(() => loadConfig({ cwd: dir(), env: {}, flags: { 'http-port': '-5' } }))).toEqual([
      'flag --http-port: server.http_port: expected an integer from 0 to 65535, got -5',
    ]);
    expect(problemsOf(() => loadConfig({ cwd: dir(), env: { TOKENMETER_MAX_REQUEST_BYTES: 'lots' } }))[0]).toMatch(
      /^environment variable TOKENMETER_MAX_REQUEST_BYTES: limits\.max_request_bytes: expected a size/,
    );
  });

  it('errors from the other modules\' sub-schemas read the same way', () => {
    const cases: [unknown, string][] = [
      [{ plans: { pro: { limits: { cost_usd: 20 } } } }, 'f.yaml: plans.pro.limits.cost_usd: expected a quoted decimal string such as "25.00", got 20'],
      [{ users: { bob: { plan: 'gold' } } }, 'f.yaml: users.bob.plan: plan "gold" is not configured (plans: free, pro, team)'],
      [{ plans: {} }, 'f.yaml: plans: at least one plan is required (omit `plans` for the defaults free, pro, team)'],
      [{ period: { timezone: 'Mars/Olympus' } }, 'f.yaml: period.timezone: expected an IANA time zone such as "UTC" or "Europe/Berlin", got "Mars/Olympus"'],
      [{ pricing: { overrides: [{ provider: 'x', model: 'y', prices_usd_per_mtok: { input: 2.5 } }] } }, 'f.yaml: pricing.overrides[0].prices_usd_per_mtok.input: expected a quoted decimal string such as "2.50", got 2.5'],
      [{ display: { rates: { EUR: 0.92 } } }, 'f.yaml: display.rates.EUR: expected a quoted string (write "0.92", not 0.92), got 0.92'],
    ];
    for (const [raw, line] of cases) expect(problemsOf(() => validateConfig(raw, 'f.yaml'))).toContain(line);
    expect(problemsOf(() => validateConfig({ display: { rates: { XXY: '1' } } }, 'f.yaml'))[0]).toMatch(/^f\.yaml: display\.rates\.XXY: key "XXY" must be an ISO 4217/);
  });

  it('names a missing file, a directory, and a top level that is not a mapping', () => {
    const d = dir();
    mkdirSync(join(d, 'adir'));
    writeFileSync(join(d, 'list.yaml'), '- a\n- b\n');
    writeFileSync(join(d, 'scalar.yaml'), '42\n');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'nope.yaml' }))[0]).toBe('nope.yaml: cannot read the configuration file (no such file)');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'adir' }))[0]).toBe('adir: is a directory, expected a YAML file');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'list.yaml' }))[0]).toBe('list.yaml: expected a mapping of settings at the top level, got a list');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'scalar.yaml' }))[0]).toBe('scalar.yaml: expected a mapping of settings at the top level, got 42');
    expect(problemsOf(() => loadConfig({ cwd: d, env: { TOKENMETER_CONFIG: 'gone.yaml' } }))[0]).toMatch(/^gone\.yaml: cannot read/);
  });

  it('a YAML syntax error names the file, line and column', () => {
    const d = dir();
    writeFileSync(join(d, 's.yaml'), 'server:\n  otlp_port: [1, 2\n');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 's.yaml' }))[0]).toMatch(/^s\.yaml:\d+:\d+: /);
  });

  it('duplicate keys are errors (the second would silently win)', () => {
    const d = dir();
    writeFileSync(join(d, 'dup.yaml'), 'storage: a\nstorage: b\n');
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'dup.yaml' }))[0]).toMatch(/^dup\.yaml:2:1: .*[Uu]nique|dup\.yaml:2:1: .*key/);
  });
});

describe('hostile YAML', () => {
  it('refuses an alias bomb ("billion laughs") quickly', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const d = dir();
    writeFileSync(join(d, 'bomb.yaml'), lines.join('\n') + '\n');
    const problems = problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'bomb.yaml' }));
    expect(problems[0]).toMatch(/^bomb\.yaml: .*(alias|resource exhaustion)/i);
  });

  it('refuses a file over the size cap without parsing it', () => {
    const d = dir();
    writeFileSync(join(d, 'huge.yaml'), `# ${'x'.repeat(MAX_CONFIG_FILE_BYTES + 10)}\n`);
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'huge.yaml' }))[0]).toBe(
      `huge.yaml: file is larger than ${MAX_CONFIG_FILE_BYTES} bytes; a configuration is a few KB`,
    );
  });

  it('refuses binary content and wrong types everywhere without throwing anything but ConfigError', () => {
    const d = dir();
    writeFileSync(join(d, 'bin.yaml'), Buffer.from([0x73, 0x3a, 0x00, 0xff, 0xfe]));
    expect(problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'bin.yaml' }))[0]).toMatch(/^bin\.yaml: contains NUL bytes/);
    const wrongTypes: unknown[] = [
      { server: 'localhost:4318' },
      { server: { otlp_port: 1.5 } },
      { storage: 42 },
      { storage: '' },
      { limits: [] },
      { plans: 'pro' },
      { users: { alice: 5 } },
      { auth: { ingest_token: 'short' } },
      { display: { currency: 'euro' } },
      { ledger: { refresh_interval: 15 } },
      { __proto__: { storage: 'x' }, constructor: 1 },
    ];
    for (const raw of wrongTypes) {
      const problems = problemsOf(() => validateConfig(raw, 'w.yaml'));
      expect(problems.length).toBeGreaterThan(0);
      for (const p of problems) expect(p).toMatch(/^w\.yaml: \S/);
    }
  });

  it('a YAML "__proto__" key is a plain unknown key, not prototype pollution', () => {
    const d = dir();
    writeFileSync(join(d, 'p.yaml'), '__proto__:\n  polluted: true\n');
    const problems = problemsOf(() => loadConfig({ cwd: d, env: {}, configPath: 'p.yaml' }));
    expect(problems[0]).toMatch(/^p\.yaml: \["__proto__"\]: unknown key|^p\.yaml: __proto__: unknown key/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('rendering', () => {
  it('redacts secrets and URL passwords in the effective configuration', () => {
    const loaded = loadConfig({
      cwd: dir(),
      env: { TOKENMETER_STORAGE: 'postgres://tm:s3cret@127.0.0.1:5432/tm', TOKENMETER_INGEST_TOKEN: 'super-secret-ingest-token', TOKENMETER_API_TOKEN: 'super-secret-api-token!' },
    });
    const text = renderEffectiveConfig(loaded);
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('super-secret');
    expect(text).toContain('storage: postgres://tm:<redacted>@127.0.0.1:5432/tm');
    expect(text).toContain('ingest_token: <redacted>');
    expect(text).toContain('dedup_window: 7d');
    expect(text).toContain('# auth.api_token: from environment variable TOKENMETER_API_TOKEN');
    expect(redactStorage('./.tokenmeter/ledger')).toBe('./.tokenmeter/ledger');
    expect(redactStorage('postgres://127.0.0.1/db?password=x')).not.toContain('=x');
  });

  it('renders the Markdown reference from the schema', () => {
    const ref = renderConfigReference();
    expect(ref).toContain('| `server.otlp_port` | an integer from 0 to 65535 | `4318` | `TOKENMETER_OTLP_PORT`, `--otlp-port` |');
    expect(ref).toContain('| `ledger.dedup_window` |');
    expect(ref).toContain('`"7d"`');
    expect(ref).toContain('| `TOKENMETER_API_TOKEN` | `auth.api_token` |  |');
    for (const key of ['storage', 'server.host', 'auth.ingest_token', 'limits.max_users', 'limits.max_decompressed_bytes', 'ledger.retention', 'plans', 'users', 'period', 'pricing.overrides', 'display.rates']) {
      expect(ref).toContain(`| \`${key}\` |`);
    }
  });
});
