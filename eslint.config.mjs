// Lint guards the architecture: src/core, src/protocol and webview/ never import `vscode`,
// so the engine stays testable in plain Node and the webviews stay browser-only.
import tseslint from 'typescript-eslint';

const noVscode = {
  'no-restricted-imports': [
    'error',
    {
      paths: [
        {
          name: 'vscode',
          message: 'src/core, src/protocol and webview/ must not import vscode: put host code in src/extension.',
        },
      ],
      patterns: [
        {
          group: ['**/extension/**', '../extension/*'],
          message: 'core/protocol/webview code must not depend on the extension layer.',
        },
      ],
    },
  ],
};

export default tseslint.config(
  {
    ignores: [
      '.scratch/**',
      'dist/**',
      'node_modules/**',
      'test/fixtures/**',
      '.vscode-test/**',
      'test-results/**',
      'out/**',
      'demo-workspace/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
    },
  },
  {
    // Prettier wraps code at 120 columns; what it cannot wrap (comments, long strings) is wrapped by hand:
    // a long message or prompt is written as pieces joined with +.
    files: ['**/*.ts', '**/*.mjs', '**/*.cjs'],
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
    },
  },
  { files: ['src/core/**/*.ts', 'src/protocol/**/*.ts', 'src/cli/**/*.ts'], rules: noVscode },
  {
    // A webview is browser code talking to the host through messages: besides npm packages it may
    // import only the message schemas (src/protocol) and the shared webview code (webview/shared).
    files: ['webview/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: noVscode['no-restricted-imports'][1].paths,
          patterns: [
            {
              regex: '^\\.\\./(?!shared/|\\.\\./src/protocol/)',
              message: 'webview/ imports only src/protocol, webview/shared and npm packages.',
            },
          ],
        },
      ],
    },
  },
  { files: ['**/*.mjs', '**/*.js', '**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
);
