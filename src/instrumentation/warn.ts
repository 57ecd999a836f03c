import { diag } from '@opentelemetry/api';

/*
 * The one way the app-side code tells a user that tokenmeter is not metering something: one line on stderr per
 * kind of problem (never per call or per batch), and the same text through OTel `diag` for apps that route it.
 * A warning must name the thing (package, endpoint, ...) and the fix, so the user needs no source to act on it.
 */

const PREFIX = 'tokenmeter: warning: ';
const said = new Set<string>();

/** Where warnings go; tests swap it to read them. Defaults to stderr. */
let sink: (line: string) => void = (line) => {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // A closed stderr must never break the app.
  }
};

/**
 * Prints `message` once per `key` for the life of the process (stderr + `diag.warn`). Returns true when it was
 * printed now, false when that key was already reported. Never throws.
 */
export function warnOnce(key: string, message: string): boolean {
  if (said.has(key)) return false;
  said.add(key);
  const line = PREFIX + message.replace(/\s*\n\s*/g, ' ');
  try {
    diag.warn(line);
  } catch {
    // diag loggers are the app's; a throwing one must not stop the stderr line.
  }
  sink(line);
  return true;
}

/** For tests: capture warnings instead of writing them, and forget what was said. Returns the restore function. */
export function captureWarnings(into: string[]): () => void {
  const previous = sink;
  said.clear();
  sink = (line) => into.push(line);
  return () => {
    sink = previous;
    said.clear();
  };
}
