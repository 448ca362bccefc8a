// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layer rule of DESIGN §2: each folder of src/ may import only the folders listed for it.
 * Anything else is a lint error, so the dependency direction cannot drift.
 */
// Each layer may use every layer below it (DESIGN §2), plus the listed same-layer exceptions.
const BASE = ['core', 'pki', 'config'];
const PORTS = [...BASE, 'keys', 'store', 'audit', 'access', 'issuer', 'deploy'];
const DOMAIN = [...PORTS, 'ca', 'acme', 'vpn', 'lifecycle'];
const EDGE = [...DOMAIN, 'scheduler', 'api', 'agent'];
const ALLOWED = {
  core: [],
  pki: ['core'],
  config: ['core', 'pki'],
  keys: BASE,
  store: BASE,
  audit: BASE,
  access: [...BASE, 'store'], // tokens are stored records
  issuer: BASE,
  deploy: BASE,
  ca: PORTS,
  acme: PORTS,
  vpn: PORTS,
  lifecycle: PORTS,
  scheduler: [...PORTS, 'lifecycle', 'vpn', 'ca'],
  api: DOMAIN,
  agent: ['core', 'pki', 'config', 'keys', 'access'],
  app: EDGE,
  cli: [...EDGE, 'app'],
};

/** Third-party libraries confined to the folders that own them (one library, one place). */
const OWNERS = {
  lowdb: ['store'],
  fastify: ['api'],
  '@fastify/*': ['api'],
  'prom-client': ['api'],
  'acme-client': ['acme'],
  'node-cron': ['scheduler'],
  commander: ['cli'],
  pino: ['app'],
  yaml: ['config'],
  zod: ['config', 'api', 'cli'],
  '@peculiar/x509': ['pki', 'ca'],
  pkijs: ['pki', 'ca'],
  asn1js: ['pki', 'ca'],
  jose: ['api', 'agent'],
};

const folders = Object.keys(ALLOWED);

/** @param {string} folder */
function restrictionsFor(folder) {
  const allowed = new Set([folder, ...ALLOWED[/** @type {keyof typeof ALLOWED} */ (folder)]]);
  const forbidden = folders.filter((f) => !allowed.has(f));
  const patterns = [];
  if (forbidden.length > 0) {
    patterns.push({
      regex: `^(\\.\\./)+(${forbidden.join('|')})(/|$)`,
      message: `src/${folder} may import only: ${[...allowed].join(', ')} (DESIGN §2 layers).`,
    });
  }
  patterns.push({ regex: '^(\\.\\./)+main(\\.js)?$', message: 'Nothing imports main.ts.' });
  for (const [lib, owners] of Object.entries(OWNERS)) {
    if (!owners.includes(folder)) {
      const name = lib.replace('/*', '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      patterns.push({
        regex: lib.endsWith('/*') ? `^${name}/` : `^${name}(/|$)`,
        message: `${lib} lives in src/${owners.join(' or src/')} only.`,
      });
    }
  }
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths: SYNC_KEYGEN, patterns }] },
  };
}

/**
 * Node 20's generateKeyPairSync leaves its job to the garbage collector, whose finaliser takes the new
 * key's lock: a collection during a JWK export of that key deadlocks the process (src/keys/generate.ts).
 */
const SYNC_KEYGEN = [
  {
    name: 'node:crypto',
    importNames: ['generateKeyPairSync'],
    message:
      'Use generateKeyPair from src/keys/generate.ts: generateKeyPairSync can deadlock a later JWK export.',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'bench/results/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      '@typescript-eslint/require-await': 'off', // fastify plugins and ports are async by contract
    },
  },
  ...folders.map(restrictionsFor),
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
    },
  },
  {
    // Tests and benchmarks get their sync key pairs from test/helpers/keys.ts, which makes them safe.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    ignores: ['test/helpers/keys.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: SYNC_KEYGEN.map((p) => ({
            ...p,
            message:
              'Use generateKeyPairSync from test/helpers/keys.ts: the node:crypto one can deadlock a later JWK export.',
          })),
        },
      ],
    },
  },
);
