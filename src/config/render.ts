import { stringify } from 'yaml';
import { z } from 'zod';
import { CONFIG_OVERRIDES, type LoadedConfig } from './load.js';
import { configSchema, SECRET_PATHS, type TokenmeterConfig } from './schema.js';
import { describeExpected, inputJsonSchema } from './format-issues.js';
import { formatDurationMillis } from './units.js';

export const REDACTED = '<redacted>';

/** Paths holding durations (milliseconds in the parsed config), printed back as `15s`, `7d`. */
const DURATION_PATHS = ['server.shutdown_timeout', 'ledger.dedup_window', 'ledger.retention', 'ledger.refresh_interval', 'ledger.retry_after'];

/** Hides the password (and any token in the query) of a storage URL; a directory is returned as is. */
export function redactStorage(storage: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(storage)) return storage;
  try {
    const u = new URL(storage);
    if (u.password) u.password = REDACTED;
    for (const k of [...u.searchParams.keys()]) if (/pass|token|secret|key/i.test(k)) u.searchParams.set(k, REDACTED);
    return u.toString().replace(encodeURIComponent(REDACTED), REDACTED);
  } catch {
    return REDACTED;
  }
}

/** Converts parsed values (Decimal, Date, Map...) back into plain YAML-printable data. */
function toPlain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  if (Array.isArray(value)) return value.map(toPlain);
  const ctor = (value as object).constructor;
  if (ctor && ctor !== Object && typeof (value as { toFixed?: unknown }).toFixed === 'function') {
    return (value as { toFixed(): string }).toFixed(); // Decimal
  }
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toPlain(v)]));
}

/** The effective configuration as plain data with secrets redacted. */
export function redactedConfig(config: TokenmeterConfig): Record<string, unknown> {
  const plain = toPlain(config) as Record<string, unknown>;
  plain.storage = redactStorage(config.storage);
  for (const path of SECRET_PATHS) {
    let cur: Record<string, unknown> | undefined = plain;
    for (const seg of path.slice(0, -1)) cur = cur?.[seg] as Record<string, unknown> | undefined;
    const last = path[path.length - 1]!;
    if (cur && cur[last] !== undefined) cur[last] = REDACTED;
  }
  for (const dotted of DURATION_PATHS) {
    const [a, b] = dotted.split('.') as [string, string];
    const section = plain[a] as Record<string, unknown> | undefined;
    if (section && typeof section[b] === 'number') section[b] = formatDurationMillis(section[b] as number);
  }
  return plain;
}

/** `tokenmeter config check` output: where the settings came from, then the effective config as YAML. */
export function renderEffectiveConfig(loaded: LoadedConfig): string {
  const header = [`# effective tokenmeter configuration (secrets redacted)`, `# file: ${loaded.file ?? '(none: defaults)'}`];
  for (const [path, source] of Object.entries(loaded.overrides)) header.push(`# ${path}: from ${source}`);
  return `${header.join('\n')}\n${stringify(redactedConfig(loaded.config), { lineWidth: 0 })}`;
}

type JsonSchema = Record<string, unknown>;

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function renderDefault(v: unknown): string {
  if (v === undefined) return '';
  return `\`${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}\``;
}

function unwrap(node: JsonSchema): JsonSchema {
  // `.optional()` / `.default()` keep the node; a one-branch anyOf is the same node.
  const any = node.anyOf as JsonSchema[] | undefined;
  if (any && any.length === 1) return { ...any[0], ...node, anyOf: undefined };
  return node;
}

function rows(node: JsonSchema, prefix: string, out: string[][], depth: number): void {
  const props = (node.properties ?? {}) as Record<string, JsonSchema>;
  for (const [key, rawChild] of Object.entries(props)) {
    const child = unwrap(rawChild);
    const path = prefix ? `${prefix}.${key}` : key;
    const isSection = child.type === 'object' && child.properties && depth < 1;
    const envs = CONFIG_OVERRIDES.filter((o) => o.path.join('.') === path)
      .flatMap((o) => [`\`${o.env}\``, ...(o.flag ? [`\`--${o.flag}\``] : [])])
      .join(', ');
    const expected = isSection ? 'section' : (describeExpected({ ...child, description: undefined }) ?? '');
    const description = typeof child.description === 'string' ? child.description : '';
    out.push([`\`${path}\``, expected, renderDefault(isSection ? undefined : child.default), envs, description]);
    if (isSection) rows(child, path, out, depth + 1);
  }
}

/**
 * The Markdown reference of every setting, generated from the zod schema (so it cannot drift from what the
 * exporter accepts). The README's configuration section is made from it.
 */
export function renderConfigReference(): string {
  const schema = inputJsonSchema(configSchema as z.ZodType);
  const table: string[][] = [];
  rows(schema, '', table, 0);
  const lines = [
    '| setting | expected | default | env / flag | description |',
    '| --- | --- | --- | --- | --- |',
    ...table.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ];
  const envLines = CONFIG_OVERRIDES.map((o) => `| \`${o.env}\` | \`${o.path.join('.')}\` | ${o.flag ? `\`--${o.flag}\`` : ''} |`);
  return [
    '## Configuration reference',
    '',
    'Precedence: command-line flag, then environment variable, then the configuration file, then the default.',
    'The file is `--config <path>`, else `TOKENMETER_CONFIG`, else `./tokenmeter.yaml` if it exists; without one,',
    'tokenmeter runs on the defaults. Unknown keys are errors. Durations are written like `15s`, `7d`; sizes like',
    '`4MiB` or a number of bytes.',
    '',
    ...lines,
    '',
    '### Environment variables and flags',
    '',
    '| environment variable | setting | flag |',
    '| --- | --- | --- |',
    `| \`TOKENMETER_CONFIG\` | the configuration file | \`--config\` |`,
    ...envLines,
    '',
  ].join('\n');
}
