import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { YAMLParseError, parseDocument } from 'yaml';
import { configSchema, SECRET_PATHS, type TokenmeterConfig } from './schema.js';
import { formatIssues, formatPath, inputJsonSchema, type FormattedIssue } from './format-issues.js';
import { planReferenceIssues } from '../plans/index.js';

/** A configuration that cannot be used. `problems` are one line each, each naming where it came from. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Largest configuration file read (a config is a few KB; anything this big is a mistake or an attack). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
/** YAML aliases allowed in one file (defeats "billion laughs" alias bombs). */
export const MAX_YAML_ALIASES = 100;

export const DEFAULT_CONFIG_FILE = 'tokenmeter.yaml';
export const CONFIG_ENV = 'TOKENMETER_CONFIG';

type OverrideKind = 'string' | 'int' | 'size';

/** A setting that an environment variable and/or a command-line flag can override (flag > env > file > default). */
export interface ConfigOverride {
  path: readonly string[];
  env: string;
  /** `serve` flag name without dashes, if any. Secrets have none (argv is visible to every local user). */
  flag?: string;
  kind: OverrideKind;
}

export const CONFIG_OVERRIDES: readonly ConfigOverride[] = [
  { path: ['storage'], env: 'TOKENMETER_STORAGE', flag: 'storage', kind: 'string' },
  { path: ['server', 'host'], env: 'TOKENMETER_HOST', flag: 'host', kind: 'string' },
  { path: ['server', 'otlp_port'], env: 'TOKENMETER_OTLP_PORT', flag: 'otlp-port', kind: 'int' },
  { path: ['server', 'http_port'], env: 'TOKENMETER_HTTP_PORT', flag: 'http-port', kind: 'int' },
  { path: ['server', 'max_connections'], env: 'TOKENMETER_MAX_CONNECTIONS', kind: 'int' },
  { path: ['auth', 'ingest_token'], env: 'TOKENMETER_INGEST_TOKEN', kind: 'string' },
  { path: ['auth', 'api_token'], env: 'TOKENMETER_API_TOKEN', kind: 'string' },
  { path: ['limits', 'max_request_bytes'], env: 'TOKENMETER_MAX_REQUEST_BYTES', kind: 'size' },
  { path: ['limits', 'max_decompressed_bytes'], env: 'TOKENMETER_MAX_DECOMPRESSED_BYTES', kind: 'size' },
  { path: ['limits', 'max_users'], env: 'TOKENMETER_MAX_USERS', flag: 'max-users', kind: 'int' },
  { path: ['ledger', 'dedup_window'], env: 'TOKENMETER_DEDUP_WINDOW', kind: 'string' },
  { path: ['ledger', 'refresh_interval'], env: 'TOKENMETER_REFRESH_INTERVAL', kind: 'string' },
  { path: ['ingest', 'late_arrival_window'], env: 'TOKENMETER_LATE_ARRIVAL_WINDOW', kind: 'string' },
  { path: ['ingest', 'clock_skew'], env: 'TOKENMETER_CLOCK_SKEW', kind: 'string' },
  { path: ['ingest', 'framework_spans'], env: 'TOKENMETER_FRAMEWORK_SPANS', kind: 'string' },
  { path: ['ingest', 'framework_spans_window'], env: 'TOKENMETER_FRAMEWORK_SPANS_WINDOW', kind: 'string' },
  { path: ['ingest', 'worker_threads'], env: 'TOKENMETER_INGEST_WORKER_THREADS', flag: 'ingest-worker-threads', kind: 'int' },
  { path: ['display', 'currency'], env: 'TOKENMETER_DISPLAY_CURRENCY', kind: 'string' },
];

export interface LoadConfigOptions {
  /** `--config` (wins over TOKENMETER_CONFIG). */
  configPath?: string;
  /** Flag values by flag name (`'otlp-port': '0'`), as parsed from argv. */
  flags?: Readonly<Record<string, string | undefined>>;
  /** Environment (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where a relative config path and the default `tokenmeter.yaml` are looked up (default process.cwd()). */
  cwd?: string;
}

export interface LoadedConfig {
  config: TokenmeterConfig;
  /** The file read, as the user named it (or the default file found); undefined when running on defaults. */
  file?: string;
  /** Which settings came from where other than the file: `server.otlp_port` → `flag --otlp-port`. */
  overrides: Record<string, string>;
}

function coerce(kind: OverrideKind, raw: string): unknown {
  if (kind === 'int' && /^-?\d{1,15}$/.test(raw.trim())) return Number(raw.trim());
  if (kind === 'size' && /^\d{1,15}$/.test(raw.trim())) return Number(raw.trim());
  return raw;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sets a value at a path, creating mappings on the way; leaves a wrong-typed parent alone (zod reports it). */
function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = root;
  for (const seg of path.slice(0, -1)) {
    const next = cur[seg];
    if (next === undefined || next === null) cur[seg] = {};
    else if (!isPlainObject(next)) return;
    cur = cur[seg] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** Reads a config file with a size cap (without trusting the file's reported size for the read). */
function readCapped(path: string, shownAs: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([`${shownAs}: cannot read the configuration file (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`]);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new ConfigError([`${shownAs}: is a directory, expected a YAML file`]);
    const buf = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_CONFIG_FILE_BYTES) throw new ConfigError([`${shownAs}: file is larger than ${MAX_CONFIG_FILE_BYTES} bytes; a configuration is a few KB`]);
    }
    const text = buf.subarray(0, n).toString('utf8');
    if (text.includes('\u0000')) throw new ConfigError([`${shownAs}: contains NUL bytes, expected a YAML text file`]);
    return text;
  } finally {
    closeSync(fd);
  }
}

/** Parses YAML (or JSON, a YAML subset) into plain data, with duplicate keys and alias bombs refused. */
export function parseConfigText(text: string, shownAs: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true, merge: false });
  const errors = doc.errors.map((e) => {
    const pos = e instanceof YAMLParseError && e.linePos ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
    return `${shownAs}${pos}: ${e.message.split('\n')[0]}`;
  });
  if (errors.length) throw new ConfigError(errors);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) ?? {};
  } catch (err) {
    throw new ConfigError([`${shownAs}: ${err instanceof Error ? err.message : String(err)}`]);
  }
}

const NULLABLE_SECTIONS = ['server', 'auth', 'limits', 'ledger', 'period', 'pricing', 'display', 'users'];

let cachedJsonSchema: Record<string, unknown> | undefined;
function jsonSchema(): Record<string, unknown> {
  return (cachedJsonSchema ??= inputJsonSchema(configSchema));
}

/**
 * Validates configuration data. `origin` names the file (or "configuration") in errors; `overrideOrigins` maps a
 * dotted path to the environment variable or flag that set it, so errors name the real source.
 */
export function validateConfig(raw: unknown, origin: string, overrideOrigins: Record<string, string> = {}): TokenmeterConfig {
  if (!isPlainObject(raw)) {
    throw new ConfigError([`${origin}: expected a mapping of settings at the top level, got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`]);
  }
  // `auth:` with every line commented out is null in YAML: read it as an empty section, not an error.
  const input: Record<string, unknown> = { ...raw };
  for (const k of NULLABLE_SECTIONS) if (input[k] === null) delete input[k];
  const result = configSchema.safeParse(input, { reportInput: true });
  let issues: FormattedIssue[];
  if (result.success) {
    // Cross-section checks the per-section schemas cannot make (a user assigned to a plan that does not exist).
    issues = planReferenceIssues(result.data.plans, result.data.users).map((i) => ({ path: i.path, text: `${formatPath(i.path)}: ${i.message}` }));
    if (issues.length === 0) return result.data;
  } else issues = formatIssues(result.error.issues, jsonSchema(), input, SECRET_PATHS);
  const problems = issues.map(({ path, text }) => {
    const dotted = path.map(String).join('.');
    const src = Object.entries(overrideOrigins).find(([p]) => dotted === p || dotted.startsWith(`${p}.`))?.[1];
    return `${src ?? origin}: ${text}`;
  });
  throw new ConfigError([...new Set(problems)]);
}

/**
 * Loads the effective configuration: flag, then environment variable, then config file, then default. With no
 * `--config`, no TOKENMETER_CONFIG and no `./tokenmeter.yaml`, runs on the defaults.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const cwd = options.cwd ?? process.cwd();
  const envFile = env[CONFIG_ENV]?.trim() || undefined;
  let file = options.configPath ?? envFile;
  if (file === undefined && existsSync(resolve(cwd, DEFAULT_CONFIG_FILE))) file = DEFAULT_CONFIG_FILE;

  let raw: unknown = {};
  if (file !== undefined) raw = parseConfigText(readCapped(resolve(cwd, file), file), file);
  if (!isPlainObject(raw)) {
    throw new ConfigError([`${file}: expected a mapping of settings at the top level, got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`]);
  }
  const merged = structuredClone(raw);
  const overrides: Record<string, string> = {};
  for (const o of CONFIG_OVERRIDES) {
    const fromFlag = o.flag !== undefined ? flags[o.flag] : undefined;
    const fromEnv = env[o.env];
    let value: string | undefined;
    let source: string | undefined;
    if (fromFlag !== undefined) {
      value = fromFlag;
      source = `flag --${o.flag}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      value = fromEnv;
      source = `environment variable ${o.env}`;
    }
    if (value === undefined || source === undefined) continue;
    setPath(merged, o.path, coerce(o.kind, value));
    overrides[o.path.join('.')] = source;
  }
  const config = validateConfig(merged, file ?? 'configuration', overrides);
  return file === undefined ? { config, overrides } : { config, file, overrides };
}

export { formatPath };
