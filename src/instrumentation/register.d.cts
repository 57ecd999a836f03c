// Types of `tokenmeter/register` for CommonJS consumers (`require('tokenmeter/register')`, or an import that
// TypeScript compiles to require()): the CommonJS entry point register.cjs exports the same function.
export declare function shutdownTokenmeter(): Promise<void>;
