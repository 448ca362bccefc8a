import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { writeFileDurable } from '../../core/fs-durable.js';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

interface NetworkView {
  name: string;
  cidrs: string[];
  listenPort: number | null;
  dns: string[];
  topology: string;
  pskRotation: string | null;
  keyRotation: string | null;
  generation: number;
  peerCount: number;
}

interface PeerView {
  name: string;
  role: string;
  addresses: string[];
  publicKey: string;
  keySource: string;
  keyGeneration: number;
  endpoint: string | null;
  allowedIps: string[];
  keepalive: number | null;
}

interface RotationResult {
  network: string;
  generation: number;
  keys: string[];
  psks: string[];
  clientSideKeys: string[];
  changedConfigs: string[];
}

function integer(flag: string) {
  return (value: string): number => {
    if (!/^\d{1,6}$/.test(value)) {
      throw new AppError('INVALID_ARGUMENT', `${flag}: "${value}" is not a whole number`, {
        details: { field: flag },
      });
    }
    return Number(value);
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const path = (...parts: string[]) => `/v1/vpn/networks/${parts.map(encodeURIComponent).join('/')}`;

export function vpnCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const vpn = program.command('vpn').description('WireGuard networks: peers, keys, PSKs, configs, rotation');
  const network = vpn.command('network').description('VPN networks');

  network
    .command('create')
    .argument('<name>', 'network name')
    .description('create a network with an address pool (one IPv4 and/or one IPv6 CIDR)')
    .requiredOption('--cidr <cidr>', 'address pool, e.g. 10.8.0.0/24; repeat for IPv6', collect)
    .option(
      '--listen-port <port>',
      'UDP port every peer listens on (default: none, wg picks)',
      integer('--listen-port'),
    )
    .option('--dns <server>', 'DNS server for the configs; repeatable', collect)
    .option('--topology <t>', 'mesh (every peer reaches every other) or hub (spokes reach the hub)', 'mesh')
    .option('--psk-rotation <duration>', 'rotate every PSK this often, e.g. 1d')
    .option('--key-rotation <duration>', 'rotate server-made key pairs this often, e.g. 30d')
    .action(
      async (
        name: string,
        o: {
          cidr: string[];
          listenPort?: number;
          dns?: string[];
          topology: string;
          pskRotation?: string;
          keyRotation?: string;
        },
      ) => {
        const g = globals();
        const created = await (
          await connect(g, io)
        ).post<NetworkView>('/v1/vpn/networks', {
          name,
          cidrs: o.cidr,
          topology: o.topology,
          ...(o.listenPort === undefined ? {} : { listenPort: o.listenPort }),
          ...(o.dns ? { dns: o.dns } : {}),
          ...(o.pskRotation ? { pskRotation: o.pskRotation } : {}),
          ...(o.keyRotation ? { keyRotation: o.keyRotation } : {}),
        });
        emit(
          io,
          g.json,
          created,
          () => `created network ${created.name} (${created.cidrs.join(', ')}, ${created.topology})`,
        );
      },
    );

  network
    .command('list')
    .description('list networks')
    .action(async () => {
      const g = globals();
      const { networks } = await (await connect(g, io)).get<{ networks: NetworkView[] }>('/v1/vpn/networks');
      emit(io, g.json, { networks }, () =>
        table(
          networks.map((n) => ({ ...n, cidrs: n.cidrs.join(',') })),
          ['name', 'cidrs', 'topology', 'peerCount', 'generation', 'pskRotation', 'keyRotation'],
        ),
      );
    });

  network
    .command('show')
    .argument('<name>', 'network name')
    .description('a network and its peers: addresses, public keys, generations (no secrets)')
    .action(async (name: string) => {
      const g = globals();
      const shown = await (await connect(g, io)).get<NetworkView & { peers: PeerView[] }>(path(name));
      emit(io, g.json, shown, () =>
        [
          `network ${shown.name}: ${shown.cidrs.join(', ')}, ${shown.topology}, generation ${shown.generation}`,
          table(
            shown.peers.map((p) => ({
              ...p,
              addresses: p.addresses.join(','),
              key: `${p.keySource}#${p.keyGeneration}`,
            })),
            ['name', 'role', 'addresses', 'publicKey', 'key', 'endpoint'],
          ),
        ].join('\n'),
      );
    });

  const peer = vpn.command('peer').description('peers of a network');

  peer
    .command('add')
    .argument('<network>', 'network name')
    .argument('<peer>', 'peer name')
    .description('add a peer; keywright makes its key pair unless --public-key gives a client-side key')
    .option(
      '--address <ip>',
      'address from the pool (default: the first free one); repeatable per pool',
      collect,
    )
    .option('--endpoint <host:port>', 'where other peers reach this one')
    .option('--allowed-ip <cidr>', 'extra network routed to this peer; repeatable', collect)
    .option(
      '--keepalive <seconds>',
      'PersistentKeepalive this peer sends (behind NAT)',
      integer('--keepalive'),
    )
    .option('--role <role>', 'hub or spoke (topology hub only)')
    .option(
      '--public-key <base64>',
      'client-side key: the public key of the peer (wg pubkey); its private key stays with it',
    )
    .option(
      '--listen-port <port>',
      'UDP port of this peer, overriding the network port',
      integer('--listen-port'),
    )
    .action(
      async (
        net: string,
        name: string,
        o: {
          address?: string[];
          endpoint?: string;
          allowedIp?: string[];
          keepalive?: number;
          role?: string;
          publicKey?: string;
          listenPort?: number;
        },
      ) => {
        const g = globals();
        const added = await (
          await connect(g, io)
        ).post<PeerView>(path(net, 'peers'), {
          name,
          ...(o.address ? { addresses: o.address } : {}),
          ...(o.endpoint ? { endpoint: o.endpoint } : {}),
          ...(o.allowedIp ? { allowedIps: o.allowedIp } : {}),
          ...(o.keepalive === undefined ? {} : { keepalive: o.keepalive }),
          ...(o.role ? { role: o.role } : {}),
          ...(o.publicKey ? { publicKey: o.publicKey } : {}),
          ...(o.listenPort === undefined ? {} : { listenPort: o.listenPort }),
        });
        emit(
          io,
          g.json,
          added,
          () =>
            `added ${net}/${added.name} at ${added.addresses.join(', ')} (public key ${added.publicKey}, ${added.keySource}-side key)`,
        );
      },
    );

  peer
    .command('remove')
    .argument('<network>', 'network name')
    .argument('<peer>', 'peer name')
    .description('remove a peer from the network and every config; its keys are disabled, destroyed later')
    .action(async (net: string, name: string) => {
      const g = globals();
      const removed = await (await connect(g, io)).delete<{ generation: number }>(path(net, 'peers', name));
      emit(io, g.json, removed, () => `removed ${net}/${name} (generation ${removed.generation})`);
    });

  peer
    .command('config')
    .argument('<network>', 'network name')
    .argument('<peer>', 'peer name')
    .description('the wg-quick config of the peer, with its private key and PSKs: handle it as a secret')
    .option('--out <file>', 'write it to FILE (mode 0600) instead of standard output')
    .action(async (net: string, name: string, o: { out?: string }) => {
      const g = globals();
      const res = await (await connect(g, io)).send<string>('GET', path(net, 'peers', name, 'config'));
      const text = String(res.body);
      const etag = String(res.headers.etag ?? '');
      if (o.out !== undefined) {
        const file = resolve(o.out);
        await writeFileDurable(file, text, 0o600);
        emit(io, g.json, { network: net, peer: name, etag, file }, () => `wrote ${file} (${etag})`);
        return;
      }
      if (g.json) emit(io, true, { network: net, peer: name, etag, config: text }, () => '');
      else io.stdout.write(text);
    });

  vpn
    .command('rotate')
    .argument('<network>', 'network name')
    .argument('[peer]', 'only the key pair of this peer and its PSKs')
    .description('rotate PSKs and server-made key pairs now; every affected config changes in one step')
    .option('--psk-only', 'rotate only pre-shared keys')
    .option('--keys-only', 'rotate only key pairs (client-side keys cannot be rotated here)')
    .action(async (net: string, name: string | undefined, o: { pskOnly?: boolean; keysOnly?: boolean }) => {
      if (o.pskOnly && o.keysOnly) {
        throw new AppError(
          'INVALID_ARGUMENT',
          '--psk-only and --keys-only exclude each other; give neither to rotate both',
        );
      }
      const g = globals();
      const what = o.pskOnly ? 'psk' : o.keysOnly ? 'keys' : 'all';
      const r = await (
        await connect(g, io)
      ).post<RotationResult>(path(net, 'rotate'), { what, ...(name === undefined ? {} : { peer: name }) });
      emit(io, g.json, r, () =>
        r.changedConfigs.length === 0
          ? `nothing to rotate in ${net}${r.clientSideKeys.length > 0 ? ` (client-side keys: ${r.clientSideKeys.join(', ')})` : ''}`
          : [
              `rotated ${net} to generation ${r.generation}: ${r.keys.length} key pair(s), ${r.psks.length} PSK(s)`,
              `configs changed: ${r.changedConfigs.join(', ')}`,
              ...(r.clientSideKeys.length > 0
                ? [`client-side keys not rotated: ${r.clientSideKeys.join(', ')}`]
                : []),
            ].join('\n'),
      );
    });
}
