import { Type } from '@sinclair/typebox';

/** GET /health: whether this server and its store answer, and what this server sees. */
export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  uptime: Type.Number({ description: 'Seconds since the server started.' }),
  store: Type.Object({
    kind: Type.String(),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String()),
  }),
  vms: Type.Optional(Type.Integer()),
  staleAfterMs: Type.Integer(),
  revision: Type.Integer({ description: 'Newest registry revision this server has seen.' }),
  watchers: Type.Integer({ description: 'Open event streams on this server.' }),
  waiting: Type.Integer({ description: 'Blocking queries waiting on this server.' }),
  version: Type.String(),
  replica: Type.String({ description: 'Which server answered (host/pid): replicas behind one load balancer tell apart.' }),
  startedAt: Type.String({ format: 'date-time', description: 'When this server started.' }),
  eventRetention: Type.Integer({ description: 'How many recent events the log keeps for watchers to resume from (REGISTRY_EVENT_RETENTION).' }),
});

