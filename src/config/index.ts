export { configSchema, DEFAULT_STORAGE } from './schema.js';
export type { TokenmeterConfig, TokenmeterConfigInput } from './schema.js';
export {
  loadConfig,
  validateConfig,
  parseConfigText,
  ConfigError,
  CONFIG_OVERRIDES,
  CONFIG_ENV,
  DEFAULT_CONFIG_FILE,
  MAX_CONFIG_FILE_BYTES,
  MAX_YAML_ALIASES,
} from './load.js';
export type { LoadConfigOptions, LoadedConfig, ConfigOverride } from './load.js';
export { renderConfigReference, renderEffectiveConfig, redactedConfig, redactStorage, REDACTED } from './render.js';
export { parseDurationMillis, formatDurationMillis, parseBytes, durationSchema, byteSizeSchema } from './units.js';
