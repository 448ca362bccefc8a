import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../core/duration.js';
import { ApiError } from '../../core/errors.js';
import { authorize, inScope } from '../../access/policy.js';
import {
  PEER_ROLES,
  ROTATE_WHAT,
  TOPOLOGIES,
  etagMatches,
  type VpnActor,
  type VpnService,
} from '../../vpn/index.js';
import type { ApiDeps } from '../deps.js';
import { actorOf } from '../audited.js';
import { parseInput } from '../validate.js';
import { longPolls, waitParam } from '../long-poll.js';

const name = z.string().min(1).max(64);
const duration = (field: string) =>
  z
    .string()
    .refine((v) => {
      try {
        parseDuration(v, field);
        return true;
      } catch {
        return false;
      }
    }, 'not a duration; use e.g. 1d, 12h or P30D')
    .optional();

const createNetworkBody = z.strictObject({
  name,
  cidrs: z.array(z.string().max(64)).min(1).max(2),
  listenPort: z.number().int().optional(),
  dns: z.array(z.string().max(253)).max(8).optional(),
  topology: z.enum(TOPOLOGIES as [string, ...string[]]).optional(),
  pskRotation: duration('pskRotation'),
  keyRotation: duration('keyRotation'),
});

const addPeerBody = z.strictObject({
  name,
  addresses: z.array(z.string().max(64)).max(2).optional(),
  endpoint: z.string().max(300).optional(),
  allowedIps: z.array(z.string().max(64)).max(64).optional(),
  keepalive: z.number().int().optional(),
  role: z.enum(PEER_ROLES as [string, ...string[]]).optional(),
  publicKey: z.string().max(64).optional(),
  listenPort: z.number().int().optional(),
});

const rotateBody = z.strictObject({
  peer: name.optional(),
  what: z.enum(ROTATE_WHAT as [string, ...string[]]).default('all'),
});

const netParams = z.strictObject({ net: name });
const peerParams = z.strictObject({ net: name, peer: name });
const configQuery = z.strictObject({
  /** Long poll: when If-None-Match still matches, wait up to this many seconds for a change. */
  wait: waitParam,
});

function who(request: FastifyRequest): VpnActor {
  return { actor: actorOf(request), requestId: request.id };
}

/** The VPN resource: `vpn:<net>` for the network, `vpn:<net>/<peer>` for one peer (access/scopes.ts). */
const resource = (net: string, peer?: string) => ({
  kind: 'vpn' as const,
  name: peer === undefined ? net : `${net}/${peer}`,
});

/**
 * WireGuard networks, peers, configs and rotation. The service audits every change inside its own
 * transaction (entry before commit), so these handlers authorize, validate the shape and delegate.
 */
export function vpnRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const hold = longPolls(app);

    const vpn = (): VpnService => {
      if (deps.vpn === undefined) {
        throw new ApiError('DAEMON_SEALED', 'the VPN service is not available: the daemon is sealed');
      }
      return deps.vpn;
    };

    app.get('/v1/vpn/networks', (request) => {
      authorize(request.principal!, 'vpn.read');
      const networks = vpn()
        .listNetworks()
        .filter((n) => inScope(request.principal!, resource(n.name)));
      return { networks };
    });

    app.post('/v1/vpn/networks', async (request, reply) => {
      authorize(request.principal!, 'vpn.manage');
      const body = parseInput(createNetworkBody, request.body, 'body');
      authorize(request.principal!, 'vpn.manage', resource(body.name));
      const created = await vpn().createNetwork(
        {
          name: body.name,
          cidrs: body.cidrs,
          ...(body.listenPort === undefined ? {} : { listenPort: body.listenPort }),
          ...(body.dns === undefined ? {} : { dns: body.dns }),
          ...(body.topology === undefined ? {} : { topology: body.topology as 'hub' | 'mesh' }),
          ...(body.pskRotation === undefined
            ? {}
            : { pskRotationMs: parseDuration(body.pskRotation, 'pskRotation') }),
          ...(body.keyRotation === undefined
            ? {}
            : { keyRotationMs: parseDuration(body.keyRotation, 'keyRotation') }),
        },
        who(request),
      );
      return reply.status(201).send(created);
    });

    app.get('/v1/vpn/networks/:net', (request) => {
      const { net } = parseInput(netParams, request.params, 'params');
      authorize(request.principal!, 'vpn.read', resource(net));
      return vpn().getNetwork(net);
    });

    app.post('/v1/vpn/networks/:net/peers', async (request, reply) => {
      const { net } = parseInput(netParams, request.params, 'params');
      authorize(request.principal!, 'vpn.manage');
      const body = parseInput(addPeerBody, request.body, 'body');
      authorize(request.principal!, 'vpn.manage', resource(net, body.name));
      const { role, ...rest } = body;
      const peer = await vpn().addPeer(
        net,
        { ...stripUndefined(rest), ...(role === undefined ? {} : { role: role as 'hub' | 'spoke' }) },
        who(request),
      );
      return reply.status(201).send(peer);
    });

    app.delete('/v1/vpn/networks/:net/peers/:peer', async (request) => {
      const { net, peer } = parseInput(peerParams, request.params, 'params');
      authorize(request.principal!, 'vpn.manage', resource(net, peer));
      return vpn().removePeer(net, peer, who(request));
    });

    app.post('/v1/vpn/networks/:net/rotate', async (request) => {
      const { net } = parseInput(netParams, request.params, 'params');
      const body = parseInput(rotateBody, request.body ?? {}, 'body');
      authorize(request.principal!, 'vpn.manage', resource(net, body.peer));
      return vpn().rotate(
        net,
        {
          what: body.what as 'psk' | 'keys' | 'all',
          ...(body.peer === undefined ? {} : { peer: body.peer }),
        },
        who(request),
      );
    });

    // The peer's wg-quick file: private key and PSKs. ETag over the non-secret version inputs; a
    // matching If-None-Match is 304 (nothing exported, nothing unsealed, nothing audited).
    app.get('/v1/vpn/networks/:net/peers/:peer/config', async (request, reply) => {
      const { net, peer } = parseInput(peerParams, request.params, 'params');
      authorize(request.principal!, 'vpn.config.export', resource(net, peer));
      const { wait } = parseInput(configQuery, request.query, 'query');
      const ifNoneMatch = request.headers['if-none-match'];
      let { etag } = vpn().configState(net, peer);
      await hold(reply, {
        waitSeconds: wait,
        unchanged: () => {
          ({ etag } = vpn().configState(net, peer));
          return etagMatches(ifNoneMatch, etag);
        },
        waitForChange: (ms, signal) => vpn().waitForChange(net, ms, signal),
      });
      void reply.header('cache-control', 'no-store');
      if (etagMatches(ifNoneMatch, etag)) return reply.status(304).header('etag', etag).send();
      const rendered = await vpn().exportConfig(net, peer, who(request));
      return reply.header('etag', rendered.etag).type('text/plain; charset=utf-8').send(rendered.text);
    });
  };
}

/** zod leaves absent optional fields out, but exactOptionalPropertyTypes wants that proven. */
function stripUndefined<T extends Record<string, unknown>>(
  o: T,
): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
