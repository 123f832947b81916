import { Type } from '@sinclair/typebox';

/** How far a replica's in-memory copy of the registry trails the database it follows (PostgreSQL). */
export const MirrorLagSchema = Type.Object(
  {
    revisions: Type.Integer({ description: 'Revisions this replica knows were committed and has not applied yet.' }),
    ms: Type.Integer({ description: 'How long it has known of a revision it has not applied; 0 when current.' }),
    state: Type.Union([Type.Literal('current'), Type.Literal('loading'), Type.Literal('disconnected'), Type.Literal('failing')], {
      description:
        'current: reads are answered; loading: the copy is being (re)loaded; disconnected: LISTEN is lost; failing: the event log cannot be read. Reads answer 503 unless current.',
    }),
  },
  { description: "PostgreSQL replicas only: this replica's copy of the registry against the database." },
);

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
  mirror: Type.Optional(MirrorLagSchema),
  staleAfterMs: Type.Integer(),
  revision: Type.Integer({ description: 'Newest registry revision this server has seen.' }),
  watchers: Type.Integer({ description: 'Open event streams on this server.' }),
  waiting: Type.Integer({ description: 'Blocking queries waiting on this server.' }),
  version: Type.String(),
  replica: Type.String({ description: 'Which server answered (host/pid): replicas behind one load balancer tell apart.' }),
  startedAt: Type.String({ format: 'date-time', description: 'When this server started.' }),
  eventRetention: Type.Integer({ description: 'How many recent events the log keeps for watchers to resume from (REGISTRY_EVENT_RETENTION).' }),
});

