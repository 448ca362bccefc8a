import type { Command } from 'commander';
import { createPublicKey } from 'node:crypto';
import { connect, readTextFile, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

interface TokenView {
  id: string;
  role: string;
  scopes: string[];
  description: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  token?: string;
}

export function tokenCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const token = program.command('token').description('API tokens: create, list, revoke (admin)');

  token
    .command('create')
    .description('create a token; it is printed once and never stored in plaintext')
    .requiredOption('--role <role>', 'admin | operator | issuer | reader | service')
    .option('--scope <pattern...>', 'name patterns the token may act on, e.g. cert:web-* vpn:office/*')
    .option('--ttl <duration>', 'lifetime, e.g. 30d, 12h (default: no expiry)')
    .option('--description <text>', 'what the token is for')
    .option(
      '--seal-key <file>',
      'X25519 or RSA public key (PEM): format=sealed bundles for this token go to it only',
    )
    .action(
      async (opts: {
        role: string;
        scope?: string[];
        ttl?: string;
        description?: string;
        sealKey?: string;
      }) => {
        const g = globals();
        const client = await connect(g, io);
        const sealKey =
          opts.sealKey === undefined
            ? undefined
            : createPublicKey(await readTextFile(opts.sealKey, '--seal-key'))
                .export({ type: 'spki', format: 'der' })
                .toString('base64url');
        const body = {
          ...(sealKey ? { sealKey } : {}),
          role: opts.role,
          ...(opts.scope ? { scopes: opts.scope } : {}),
          ...(opts.ttl ? { ttl: opts.ttl } : {}),
          ...(opts.description ? { description: opts.description } : {}),
        };
        const created = await client.post<TokenView>('/v1/tokens', body);
        emit(io, g.json, created, () =>
          [
            `created token ${created.id} (role ${created.role})`,
            `token: ${created.token}`,
            'store it now: it is shown only once',
          ].join('\n'),
        );
      },
    );

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async () => {
      const g = globals();
      const { tokens } = await (await connect(g, io)).get<{ tokens: TokenView[] }>('/v1/tokens');
      emit(io, g.json, { tokens }, () =>
        table(
          tokens.map((t) => ({
            ...t,
            scopes: t.scopes.join(',') || '*',
            status: t.revokedAt ? 'revoked' : 'active',
          })),
          ['id', 'role', 'scopes', 'status', 'expiresAt', 'description'],
        ),
      );
    });

  token
    .command('revoke')
    .argument('<id>', 'token id (tok_…)')
    .description('revoke a token; it stops working at once')
    .action(async (id: string) => {
      const g = globals();
      const revoked = await (await connect(g, io)).delete<TokenView>(`/v1/tokens/${encodeURIComponent(id)}`);
      emit(io, g.json, revoked, () => `revoked ${revoked.id}`);
    });
}
