export { zeroUsage, totalTokens, addUsage } from './usage.js';
export type { Usage, TokenType } from './usage.js';
