import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { mkdirDurable, writeFileDurable } from '../../core/fs-durable.js';
import { writePemSet } from '../pem-files.js';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

interface CertView {
  name: string;
  issuer: string;
  sans: string[];
  key: string;
  currentVersion: number | null;
  renewAt: string | null;
  lastError: { code: string; message: string } | null;
}
interface VersionView {
  version: number;
  serial: string;
  notBefore: string;
  notAfter: string;
  status: string;
  fingerprint: string;
}
interface JsonBundle {
  name: string;
  version: number;
  certificate: string;
  chain: string;
  fullchain: string;
  privateKey?: string;
}

export function certCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const cert = program
    .command('cert')
    .description('managed certificates: issue, list, show, renew, revoke, bundle');

  cert
    .command('issue')
    .argument('<name>', 'certificate name (lowercase letters, digits, . _ -)')
    .description('create a managed certificate and issue its first version')
    .option('--san <name...>', 'DNS names, IPs, emails or URIs (DNS:, IP:, email:, URI: prefixes optional)')
    .option('--issuer <ref>', 'ca:<name> or acme:<account>', 'ca:default')
    .option('--profile <name>', "the issuing CA's profile (server, client, server-client, …)")
    .option('--key <type>', 'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 | ed25519', 'ec-p256')
    .option('--ttl <duration>', 'lifetime, e.g. 90d, 24h', '90d')
    .option('--renew-before <d|%>', 'renew this long before expiry, or at this % of lifetime left')
    .option('--csr <file>', 'sign this CSR (PEM) instead: keywright never holds the key')
    .action(
      async (
        name: string,
        opts: {
          san?: string[];
          issuer: string;
          profile?: string;
          key: string;
          ttl: string;
          renewBefore?: string;
          csr?: string;
        },
      ) => {
        const g = globals();
        const csr =
          opts.csr === undefined
            ? undefined
            : await readFile(opts.csr, 'utf8').catch(() => {
                throw new AppError('INVALID_ARGUMENT', `--csr ${opts.csr}: cannot read it`, {
                  details: { field: 'csr' },
                });
              });
        const body = {
          name,
          ...(opts.san ? { sans: opts.san } : {}),
          issuer: opts.issuer,
          ...(opts.profile ? { profile: opts.profile } : {}),
          key: opts.key,
          ttl: opts.ttl,
          ...(opts.renewBefore ? { renewBefore: opts.renewBefore } : {}),
          ...(csr ? { csr } : {}),
        };
        const res = await (
          await connect(g, io)
        ).post<{ certificate: CertView; version: VersionView }>('/v1/certificates', body);
        emit(
          io,
          g.json,
          res,
          () =>
            `issued ${name} version ${res.version.version}: serial ${res.version.serial}, valid until ${res.version.notAfter}`,
        );
      },
    );

  cert
    .command('list')
    .description('managed certificates in your scope')
    .action(async () => {
      const g = globals();
      const { certificates } = await (
        await connect(g, io)
      ).get<{ certificates: CertView[] }>('/v1/certificates');
      emit(io, g.json, { certificates }, () =>
        table(
          certificates.map((c) => ({ ...c, sans: c.sans.join(','), error: c.lastError?.code })),
          ['name', 'issuer', 'sans', 'currentVersion', 'renewAt', 'error'],
        ),
      );
    });

  cert
    .command('show')
    .argument('<name>')
    .description('a certificate, its current version and its versions')
    .action(async (name: string) => {
      const g = globals();
      const client = await connect(g, io);
      const detail = await client.get<{ certificate: CertView; current: VersionView | null }>(
        `/v1/certificates/${encodeURIComponent(name)}`,
      );
      const { versions } = await client.get<{ versions: VersionView[] }>(
        `/v1/certificates/${encodeURIComponent(name)}/versions`,
      );
      emit(io, g.json, { ...detail, versions }, () =>
        [
          `${detail.certificate.name}  issuer ${detail.certificate.issuer}  key ${detail.certificate.key}  names ${detail.certificate.sans.join(', ')}`,
          `renew at: ${detail.certificate.renewAt ?? '-'}${detail.certificate.lastError ? `  last error: ${detail.certificate.lastError.code} ${detail.certificate.lastError.message}` : ''}`,
          table(versions as unknown as Array<Record<string, unknown>>, [
            'version',
            'serial',
            'status',
            'notBefore',
            'notAfter',
          ]),
        ].join('\n'),
      );
    });

  cert
    .command('renew')
    .argument('<name>')
    .description('issue a new version now')
    .action(async (name: string) => {
      const g = globals();
      const res = await (
        await connect(g, io)
      ).post<{ version: VersionView }>(`/v1/certificates/${encodeURIComponent(name)}/renew`, {});
      emit(
        io,
        g.json,
        res,
        () => `renewed ${name}: version ${res.version.version}, serial ${res.version.serial}`,
      );
    });

  cert
    .command('revoke')
    .argument('[name]', 'the managed certificate (omit it to revoke any serial the CA issued: --serial)')
    .description('revoke the current version (or --serial S); the CRL and OCSP say so at once')
    .option('--serial <hex>', 'a specific version by serial, or without NAME any serial of --ca')
    .option('--ca <name>', 'with --serial and no NAME: the issuing CA', 'default')
    .option(
      '--reason <reason>',
      'RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, …',
      'unspecified',
    )
    .action(async (name: string | undefined, opts: { serial?: string; ca: string; reason: string }) => {
      const g = globals();
      if (name === undefined) {
        if (!opts.serial)
          throw new AppError('INVALID_ARGUMENT', 'give a certificate NAME, or --serial S (with --ca C)', {
            details: { field: 'serial' },
          });
        const res = await (
          await connect(g, io)
        ).post<{ serial: string; certificate: string | null }>(
          `/v1/cas/${encodeURIComponent(opts.ca)}/revoke`,
          { serial: opts.serial, reason: opts.reason },
        );
        emit(
          io,
          g.json,
          res,
          () =>
            `revoked serial ${res.serial} of ca:${opts.ca}${res.certificate ? ` (${res.certificate})` : ''}`,
        );
        return;
      }
      const res = await (
        await connect(g, io)
      ).post<{ version: VersionView }>(`/v1/certificates/${encodeURIComponent(name)}/revoke`, {
        reason: opts.reason,
        ...(opts.serial ? { serial: opts.serial } : {}),
      });
      emit(
        io,
        g.json,
        res,
        () => `revoked ${name} version ${res.version.version} (serial ${res.version.serial})`,
      );
    });

  const key = cert
    .command('key')
    .description("a version's private key: its state (enabled, disabled, pending-destruction, destroyed)");
  key
    .command('restore')
    .argument('<name>')
    .requiredOption('--version <n>', 'the version whose key is pending destruction')
    .description('bring a key pending destruction back (disabled, kept) before its destruction date')
    .action(async (name: string, opts: { version: string }) => {
      const g = globals();
      const res = await (
        await connect(g, io)
      ).post<{ version: VersionView & { keyState: string } }>(
        `/v1/certificates/${encodeURIComponent(name)}/versions/${encodeURIComponent(opts.version)}/key/restore`,
        {},
      );
      emit(
        io,
        g.json,
        res,
        () => `restored the key of ${name} version ${res.version.version}: ${res.version.keyState}`,
      );
    });

  cert
    .command('bundle')
    .argument('<name>')
    .description('the current certificate, chain and (if your token may export it) key')
    .option('--format <format>', 'pem | json | p12', 'pem')
    .option(
      '--out <dir>',
      "write certbot's files (cert.pem, chain.pem, fullchain.pem, privkey.pem 0600) or <name>.p12 into DIR",
    )
    .option('--p12-password-file <file>', 'PKCS#12 password (or env KEYWRIGHT_P12_PASSWORD)')
    .action(async (name: string, opts: { format: string; out?: string; p12PasswordFile?: string }) => {
      const g = globals();
      const client = await connect(g, io);
      const path = `/v1/certificates/${encodeURIComponent(name)}/bundle`;
      if (opts.format === 'p12') {
        const password = opts.p12PasswordFile
          ? (await readFile(opts.p12PasswordFile, 'utf8')).trim()
          : io.env.KEYWRIGHT_P12_PASSWORD;
        if (!password)
          throw new AppError(
            'INVALID_ARGUMENT',
            'format p12 needs a password: --p12-password-file F or KEYWRIGHT_P12_PASSWORD',
          );
        if (!opts.out) throw new AppError('INVALID_ARGUMENT', 'format p12 is binary: give --out DIR');
        const res = await client.send<Buffer>(
          'GET',
          `${path}?format=p12`,
          undefined,
          { 'x-keywright-p12-password': password },
          true,
        );
        const dir = resolve(opts.out);
        await mkdirDurable(dir);
        await writeFileDurable(join(dir, `${name}.p12`), res.body, 0o600);
        emit(io, g.json, { written: [join(dir, `${name}.p12`)] }, () => `wrote ${join(dir, `${name}.p12`)}`);
        return;
      }
      const bundle = await client.get<JsonBundle>(`${path}?format=json`);
      if (opts.out) {
        const dir = resolve(opts.out);
        const written = await writePemSet(dir, bundle);
        emit(
          io,
          g.json,
          { version: bundle.version, written },
          () =>
            `wrote version ${bundle.version} of ${name} to ${dir}: ${written.map((f) => basename(f)).join(', ')}`,
        );
        return;
      }
      if (g.json) return emit(io, true, bundle, () => '');
      io.stdout.write(bundle.fullchain + (bundle.privateKey ?? ''));
    });
}
