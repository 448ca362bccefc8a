import type { Command } from 'commander';
import { AppError } from '../../core/errors.js';
import { DIRECTORY_ALIASES } from '../../acme/directory.js';
import { connect, readTextFile, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

interface AccountView {
  name: string;
  issuer: string;
  status: string;
  directoryUrl: string;
  directoryAlias: string | null;
  accountUrl: string;
  contact: string[];
  keyThumbprint: string;
  eabKid: string | null;
  customTrust: boolean;
  termsOfService: string | null;
  createdAt: string;
  keyRolledAt: string | null;
}

interface DeclaredView {
  name: string;
  state: 'registered' | 'pending' | 'refused';
  error?: { code: string; message: string };
}

/**
 * `--ca-file` is also the global option (trust for the daemon's HTTPS), and commander gives every
 * occurrence to the global. DESIGN §4 spells `acme account register … --ca-file F` for the directory's
 * trust, so the raw argv decides: a `--ca-file` after `register` is the directory's, one before `acme`
 * stays the daemon's.
 */
export function splitCaFiles(rawArgs: readonly string[]): { daemon?: string; directory?: string } {
  const registerAt = rawArgs.indexOf('register');
  const out: { daemon?: string; directory?: string } = {};
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    let value: string | undefined;
    if (arg === '--ca-file') value = rawArgs[i + 1];
    else if (arg.startsWith('--ca-file=')) value = arg.slice('--ca-file='.length);
    if (value === undefined) continue;
    if (registerAt !== -1 && i > registerAt) out.directory = value;
    else out.daemon = value;
  }
  return out;
}

function withDaemonCaFile(g: GlobalOptions, caFile: string | undefined): GlobalOptions {
  const { caFile: _swallowed, ...rest } = g;
  return caFile === undefined ? rest : { ...rest, caFile };
}

function showAccount(a: AccountView): string {
  return [
    `${a.issuer} (${a.status})`,
    `  directory:   ${a.directoryAlias ? `${a.directoryAlias} (${a.directoryUrl})` : a.directoryUrl}`,
    `  account URL: ${a.accountUrl}`,
    `  contact:     ${a.contact.join(', ') || '-'}`,
    `  key:         ec-p256, thumbprint ${a.keyThumbprint}${a.keyRolledAt ? `, rolled over ${a.keyRolledAt}` : ''}`,
    ...(a.eabKid ? [`  EAB key id:  ${a.eabKid}`] : []),
    ...(a.termsOfService ? [`  terms:       ${a.termsOfService}`] : []),
    ...(a.customTrust ? ['  trust:       the CA file given at registration'] : []),
  ].join('\n');
}

export function acmeCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const acme = program
    .command('acme')
    .description('ACME client: accounts at Let’s Encrypt, ZeroSSL, Google or any RFC 8555 CA');
  const account = acme.command('account').description('ACME accounts (the issuer acme:<name>)');

  account
    .command('register')
    .argument('<name>', 'account name; certificates name it as issuer acme:<name>')
    .description('register an account; its key is made by keywright and sealed')
    .requiredOption(
      '--directory <url|alias>',
      `directory URL or one of: ${Object.keys(DIRECTORY_ALIASES).join(', ')}`,
    )
    .option('--email <address>', 'contact address for the CA')
    .option('--eab-kid <kid>', 'External Account Binding key id (ZeroSSL, Google, …)')
    .option(
      '--eab-hmac <key>',
      'EAB HMAC key (prefer --eab-hmac-file or env KEYWRIGHT_EAB_HMAC: argv is visible to other users)',
    )
    .option('--eab-hmac-file <file>', 'read the EAB HMAC key from a file')
    .option('--agree-tos', "agree to the CA's terms of service")
    .option(
      '--ca-file <file>',
      "PEM trust for the directory's HTTPS (private ACME servers); after `register`",
    )
    .option('--directory-ca-file <file>', 'the same as --ca-file after `register`')
    .option('--preferred-chain <issuer-cn>', 'prefer the alternate chain whose issuer has this common name')
    .action(
      async (
        name: string,
        opts: {
          directory: string;
          email?: string;
          eabKid?: string;
          eabHmac?: string;
          eabHmacFile?: string;
          agreeTos?: boolean;
          directoryCaFile?: string;
          preferredChain?: string;
        },
      ) => {
        const g = globals();
        const split = splitCaFiles((program as unknown as { rawArgs?: string[] }).rawArgs ?? []);
        const caFile = opts.directoryCaFile ?? split.directory;
        let hmac = opts.eabHmac ?? io.env.KEYWRIGHT_EAB_HMAC;
        if (opts.eabHmacFile !== undefined)
          hmac = (await readTextFile(opts.eabHmacFile, '--eab-hmac-file')).trim();
        if ((opts.eabKid === undefined) !== (hmac === undefined)) {
          throw new AppError(
            'INVALID_ARGUMENT',
            'EAB needs both --eab-kid and --eab-hmac (or --eab-hmac-file)',
          );
        }
        const body = {
          name,
          directory: opts.directory,
          agreeTos: opts.agreeTos === true,
          ...(opts.email ? { email: opts.email } : {}),
          ...(opts.eabKid && hmac ? { eab: { kid: opts.eabKid, hmacKey: hmac } } : {}),
          ...(caFile ? { caPem: await readTextFile(caFile, '--ca-file') } : {}),
          ...(opts.preferredChain ? { preferredChain: opts.preferredChain } : {}),
        };
        // The daemon's own trust: the global --ca-file given before `acme`, else env or data dir.
        const client = await connect(withDaemonCaFile(g, split.daemon), io);
        const created = await client.post<AccountView>('/v1/acme/accounts', body);
        emit(io, g.json, created, () => `registered ${created.issuer}\n${showAccount(created)}`);
      },
    );

  account
    .command('list')
    .description('list ACME accounts')
    .action(async () => {
      const g = globals();
      const { accounts, declared = [] } = await (
        await connect(g, io)
      ).get<{ accounts: AccountView[]; declared?: DeclaredView[] }>('/v1/acme/accounts');
      // Declared in acme.accounts but not registered (yet): the error says why.
      const notRegistered = declared.filter((d) => d.state !== 'registered');
      emit(io, g.json, { accounts, declared }, () =>
        [
          table(
            accounts.map((a) => ({
              ...a,
              directory: a.directoryAlias ?? a.directoryUrl,
              contact: a.contact.join(',') || '-',
              eab: a.eabKid ?? '-',
            })),
            ['name', 'status', 'directory', 'contact', 'eab', 'createdAt'],
          ),
          ...notRegistered.map(
            (d) => `${d.name}: declared, ${d.state}: ${d.error?.message ?? 'not registered yet'}`,
          ),
        ].join('\n'),
      );
    });

  account
    .command('show')
    .argument('<name>', 'account name')
    .description('show one ACME account')
    .action(async (name: string) => {
      const g = globals();
      const a = await (
        await connect(g, io)
      ).get<AccountView>(`/v1/acme/accounts/${encodeURIComponent(name)}`);
      emit(io, g.json, a, () => showAccount(a));
    });

  account
    .command('rollover')
    .argument('<name>', 'account name')
    .description('replace the account key at the CA (RFC 8555 §7.3.5); the old key is erased')
    .action(async (name: string) => {
      const g = globals();
      const a = await (
        await connect(g, io)
      ).post<AccountView>(`/v1/acme/accounts/${encodeURIComponent(name)}/rollover`, {});
      emit(io, g.json, a, () => `rolled over the key of ${a.issuer}; new thumbprint ${a.keyThumbprint}`);
    });

  account
    .command('deactivate')
    .argument('<name>', 'account name')
    .description('deactivate the account at the CA (irreversible) and erase its key')
    .option('--yes', 'confirm: the account can never be used again')
    .action(async (name: string, opts: { yes?: boolean }) => {
      const g = globals();
      if (opts.yes !== true) {
        throw new AppError(
          'INVALID_ARGUMENT',
          `deactivating ${name} cannot be undone; pass --yes to confirm`,
        );
      }
      const a = await (
        await connect(g, io)
      ).post<AccountView>(`/v1/acme/accounts/${encodeURIComponent(name)}/deactivate`, {});
      emit(io, g.json, a, () => `deactivated ${a.issuer}`);
    });

  acme
    .command('directories')
    .description('the directory aliases --directory accepts')
    .action(() => {
      const g = globals();
      const rows = Object.entries(DIRECTORY_ALIASES).map(([alias, url]) => ({ alias, url }));
      emit(io, g.json, { directories: rows }, () => table(rows, ['alias', 'url']));
    });
}
