// A test and demo server speaking the OpenAI and Anthropic wire formats. Never used on a metering path.
export { startMockProvider } from './mock-provider.js';
export type { MockProvider, MockProviderOptions, RecordedRequest, SentUsage } from './mock-provider.js';
export { generateWords } from './text.js';
