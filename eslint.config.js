import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'packages/exporter/dist/', 'packages/exporter/docs/', 'packages/exporter/grafana/', 'packages/exporter/otel-config/', '.e2e-next/', '.e2e-ts/', 'node_modules/', 'coverage/', '.tokenmeter/', 'grafana/', 'docs/', 'bench/results/', 'bench/.deps/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', fetch: 'readonly',
        AbortController: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', queueMicrotask: 'readonly',
        performance: 'readonly', structuredClone: 'readonly', Response: 'readonly', Request: 'readonly', Headers: 'readonly',
        ReadableStream: 'readonly', document: 'readonly', window: 'readonly', globalThis: 'readonly',
        require: 'readonly', module: 'writable', __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // The status page runs in a browser.
    files: ['src/exporter/status-page/**/*.js'],
    languageOptions: { globals: { location: 'readonly', sessionStorage: 'readonly', history: 'readonly', navigator: 'readonly' } },
  },
);
