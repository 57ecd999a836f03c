import { z } from 'zod';

type JsonSchema = Record<string, unknown>;

/** Renders a config path the way a user would write it: `plans.pro.limits.tokens`, `pricing.overrides[0].model`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][A-Za-z0-9_-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out || '(top level)';
}

/** A short, safe rendering of the value found (never a whole subtree, never more than ~60 characters). */
export function describeInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (typeof input === 'string') {
    const shown = input.length > 60 ? `${input.slice(0, 57)}...` : input;
    return JSON.stringify(shown);
  }
  if (typeof input === 'number' || typeof input === 'boolean' || typeof input === 'bigint') return String(input);
  if (Array.isArray(input)) return `a list of ${input.length}`;
  if (typeof input === 'object') return 'a mapping';
  return typeof input;
}

function children(node: JsonSchema): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const v = node[k];
    if (Array.isArray(v)) out.push(...(v as JsonSchema[]));
  }
  return out;
}

/** The JSON-schema node describing the value at `path`, if the schema says. */
export function schemaAt(root: JsonSchema, path: readonly PropertyKey[]): JsonSchema | undefined {
  let nodes: JsonSchema[] = [root];
  for (const seg of path) {
    const next: JsonSchema[] = [];
    const visit = (n: JsonSchema) => {
      for (const c of children(n)) visit(c);
      if (typeof seg === 'number') {
        if (n.items && typeof n.items === 'object') next.push(n.items as JsonSchema);
        if (Array.isArray(n.prefixItems) && n.prefixItems[seg]) next.push(n.prefixItems[seg] as JsonSchema);
      } else {
        const props = n.properties as Record<string, JsonSchema> | undefined;
        if (props && Object.prototype.hasOwnProperty.call(props, seg)) next.push(props[seg as string]!);
        else if (n.additionalProperties && typeof n.additionalProperties === 'object') next.push(n.additionalProperties as JsonSchema);
      }
    };
    for (const n of nodes) visit(n);
    if (next.length === 0) return undefined;
    nodes = next;
  }
  return nodes.length === 1 ? nodes[0] : { anyOf: nodes };
}

function describeNumber(node: JsonSchema, noun: 'integer' | 'number'): string {
  const min = node.minimum as number | undefined;
  const xmin = node.exclusiveMinimum as number | undefined;
  let max = node.maximum as number | undefined;
  if (max !== undefined && max >= Number.MAX_SAFE_INTEGER) max = undefined;
  const a = noun === 'integer' ? 'an integer' : 'a number';
  if (xmin === 0 || (noun === 'integer' && min === 1)) return max === undefined ? `a positive ${noun}` : `${a} from ${noun === 'integer' ? 1 : 0} to ${max}`;
  if (min === 0 && max === undefined) return `a non-negative ${noun}`;
  if (min !== undefined && max !== undefined) return `${a} from ${min} to ${max}`;
  if (min !== undefined) return `${a} >= ${min}`;
  if (xmin !== undefined) return `${a} > ${xmin}`;
  if (max !== undefined) return `${a} <= ${max}`;
  return a;
}

/** "a positive integer", "one of "a", "b"", "a mapping"... from a JSON-schema node. */
export function describeExpected(node: JsonSchema | undefined): string | undefined {
  if (!node) return undefined;
  // Schemas name their expectation with `.meta({ expected })` where the JSON-schema form would read badly (regexes).
  if (typeof node.expected === 'string') return node.expected;
  if (typeof node.description === 'string' && /^(a|an|one of) /.test(node.description)) return node.description.split('\n')[0];
  if (Array.isArray(node.enum)) return `one of ${(node.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in node) return JSON.stringify(node.const);
  const alts = children(node);
  if (alts.length > 0) {
    const parts = [...new Set(alts.map((a) => describeExpected(a)).filter((d): d is string => d !== undefined))];
    return parts.length ? parts.join(' or ') : undefined;
  }
  const type = node.type;
  if (Array.isArray(type)) return type.map((t) => describeExpected({ ...node, type: t })).join(' or ');
  switch (type) {
    case 'integer':
      return describeNumber(node, 'integer');
    case 'number':
      return describeNumber(node, 'number');
    case 'boolean':
      return 'true or false';
    case 'string':
      if (typeof node.pattern === 'string') return `a string matching ${node.pattern}`;
      if (node.minLength === 1) return 'a non-empty string';
      if (typeof node.minLength === 'number') return `a string of at least ${node.minLength} characters`;
      return 'a string';
    case 'array':
      return 'a list';
    case 'object': {
      const props = node.properties ? Object.keys(node.properties as object) : [];
      return props.length && props.length <= 8 ? `a mapping with keys ${props.join(', ')}` : 'a mapping';
    }
    case 'null':
      return 'null';
    default:
      return undefined;
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** The JSON schema of a zod schema as written (input side), for describing expectations; tolerant of custom types. */
export function inputJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', reused: 'inline' }) as JsonSchema;
}

export interface FormattedIssue {
  path: PropertyKey[];
  text: string;
}

/**
 * Turns zod issues into `path: expected X, got Y` lines. Expectations come from the schema itself (so every
 * module's sub-schema reads the same), except where the schema author wrote an explicit "expected ..." message.
 */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  jsonSchema: JsonSchema,
  input: unknown,
  secretPaths: readonly (readonly string[])[] = [],
): FormattedIssue[] {
  const out: FormattedIssue[] = [];
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const node = schemaAt(jsonSchema, path);
      const known = node?.properties ? Object.keys(node.properties as object) : [];
      for (const k of issue.keys) {
        const hint = known.length ? ` (expected one of: ${known.join(', ')})` : '';
        out.push({ path: [...path, k], text: `${formatPath([...path, k])}: unknown key${hint}` });
      }
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // A union whose branches all failed deeper inside one mapping: report the branch that got furthest.
      const deepest = issue.errors
        .map((branch) => branch.filter((i) => i.path.length > 0))
        .filter((b) => b.length > 0)
        .sort((a, b) => b[0]!.path.length - a[0]!.path.length)[0];
      const inputHere = valueAt(input, path);
      if (deepest && inputHere !== null && typeof inputHere === 'object') {
        out.push(...formatIssues(deepest.map((i) => ({ ...i, path: [...path, ...i.path] })), jsonSchema, input, secretPaths));
        continue;
      }
    }
    if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      // A record key that fails its own schema (e.g. an unknown currency code as a key).
      const inner = issue.issues[0]!.message;
      const key = path[path.length - 1];
      out.push({ path, text: `${formatPath(path)}: key ${JSON.stringify(String(key))} ${inner.startsWith('must be ') || inner.startsWith('expected ') ? inner : `is invalid: ${inner}`}` });
      continue;
    }
    const inputHere = 'input' in issue ? issue.input : valueAt(input, path);
    // A secret is never echoed, not even a rejected one (a short token is still someone's token).
    const secret = secretPaths.some((p) => p.length === path.length && p.every((k, i) => k === path[i]));
    const got = secret ? (typeof inputHere === 'string' ? `a secret of ${inputHere.length} characters (redacted)` : 'a secret (redacted)') : describeInput(inputHere);
    if (issue.code === 'custom' && inputHere !== null && typeof inputHere === 'object') {
      out.push({ path, text: `${formatPath(path)}: ${issue.message}` });
      continue;
    }
    const authored = issue.message.startsWith('expected ') || issue.message.startsWith('must be ');
    if (!authored && issue.code === 'invalid_type' && issue.expected === 'string' && typeof inputHere === 'number') {
      out.push({ path, text: secret ? `${formatPath(path)}: expected a quoted string, got ${got}` : `${formatPath(path)}: expected a quoted string (write "${inputHere}", not ${inputHere}), got ${got}` });
      continue;
    }
    // Authors write their expectation as "expected X" or "must be X"; otherwise it is derived from the schema.
    const own = issue.message.startsWith('expected ')
      ? issue.message
      : issue.message.startsWith('must be ')
        ? `expected ${issue.message.slice('must be '.length)}`
        : undefined;
    const node = schemaAt(jsonSchema, path);
    let expected = (typeof node?.expected === 'string' ? node.expected : undefined) ?? own ?? describeExpected(node);
    if (!own && issue.code === 'custom') expected = undefined;
    const text = expected ? `${formatPath(path)}: ${expected.startsWith('expected ') ? expected : `expected ${expected}`}, got ${got}` : `${formatPath(path)}: ${issue.message} (got ${got})`;
    out.push({ path, text });
  }
  return out;
}
