import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { ApiError } from '../../core/errors.js';
import { AccessError } from '../../core/errors.js';
import { isAllowed } from '../../access/policy.js';
import type { Principal } from '../../access/principal.js';
import type { Action } from '../../access/roles.js';
import {
  DISTRIBUTION_EVENT_TYPES,
  type DistributionEvent,
  type DistributionEventType,
} from '../../lifecycle/event-bus.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';

export interface EventRoutesOptions {
  /** A comment line this often keeps proxies and NATs from closing an idle stream. */
  readonly heartbeatMs?: number;
}

/** A subscriber that reads slower than events arrive is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

const eventsQuery = z.strictObject({
  /** Comma-separated subset of the event types; all by default. */
  types: z
    .string()
    .max(200)
    .transform((v) => v.split(',').filter(Boolean))
    .pipe(z.array(z.enum(DISTRIBUTION_EVENT_TYPES)))
    .optional(),
});

/** Who may hear of a change to a resource: anyone who may read it or pull it. */
const SEE: Record<DistributionEvent['resource']['kind'], readonly Action[]> = {
  cert: ['cert.read', 'key.export'],
  vpn: ['vpn.read', 'vpn.config.export'],
  ca: ['ca.read'],
  acme: ['acme.read'],
  profile: ['ca.read'],
  token: ['token.manage'],
};

function maySee(principal: Principal, event: DistributionEvent): boolean {
  return SEE[event.resource.kind].some((action) => isAllowed(principal, action, event.resource));
}

/**
 * `GET /v1/events`: server-sent events (WHATWG HTML §9.2) for issued, renewed, revoked, deployed and
 * rotated, each only if the caller's role and scopes let it read or pull the resource. Reconnecting
 * clients send Last-Event-ID and get what they missed while it is still in the bus's history.
 */
export function eventRoutes(deps: ApiDeps, options: EventRoutesOptions = {}): FastifyPluginAsync {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  return async (app) => {
    const open = new Set<ServerResponse>();
    // A graceful stop ends every stream so fastify's close is not held by them.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });

    app.get('/v1/events', (request, reply) => {
      const principal = request.principal!;
      const { types } = parseInput(eventsQuery, request.query, 'query');
      const seesAnything = Object.values(SEE)
        .flat()
        .some((action) => isAllowed(principal, action));
      if (!seesAnything) {
        throw new AccessError(
          'ACCESS_DENIED',
          `access denied: role "${principal.role}" with these scopes may read or pull nothing, so it would hear of nothing`,
          { details: { role: principal.role } },
        );
      }
      const bus = deps.events;
      if (bus === undefined)
        throw new ApiError('DAEMON_SEALED', 'events are not available: the daemon is sealed');
      const wanted = new Set<DistributionEventType>(types ?? DISTRIBUTION_EVENT_TYPES);
      const lastId = lastEventId(request);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // nginx would otherwise buffer the stream
      });
      open.add(res);
      const send = (event: DistributionEvent) => {
        if (!wanted.has(event.type) || !maySee(principal, event)) return;
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          request.log.warn({ buffered: res.writableLength }, 'dropping a slow event subscriber');
          res.destroy();
          return;
        }
        const data = JSON.stringify({
          id: event.id,
          type: event.type,
          resource: `${event.resource.kind}:${event.resource.name}`,
          at: event.at,
          ...event.details,
        });
        res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${data}\n\n`);
      };
      // retry: how long a browser-style client waits before reconnecting (ms).
      res.write(`retry: 3000\n: keywright events\n\n`);
      if (lastId !== undefined) for (const event of bus.since(lastId)) send(event);
      const unsubscribe = bus.subscribe(send);
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
      heartbeat.unref();
      res.once('close', () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(res);
      });
    });
  };
}

function lastEventId(request: FastifyRequest): number | undefined {
  const raw = request.headers['last-event-id'];
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw)) return undefined;
  return Number(raw);
}
