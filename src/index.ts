// The public API of the `tokenmeter` package. Each stage of the data flow exports through its own index.
export { TOKEN_TYPES, ATTR_USER_ID, ATTR_PLAN, ATTR_FEATURE, METRIC, LABEL } from './contract/index.js';
export type { TokenType } from './contract/index.js';
export { zeroUsage, totalTokens, addUsage } from './usage/index.js';
export type { Usage } from './usage/index.js';
