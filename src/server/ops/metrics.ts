import type { FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FAILURE_REASONS, type HealthCheckObserver } from './health-messages.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import type { WakeupCounter } from '../http/blocking-query.js';
import type { CensusLine, MirrorLag } from '../../store/store.js';

const PREFIX = 'vm_registry_';

/** Streams last as long as their watcher stays: their duration says nothing about speed, so the watchers gauge covers them. */
const STREAMING_ROUTES = new Set(['/registry/events']);

let processRegistry: Registry | undefined;

/**
 * Node's own metrics (event-loop lag, heap, GC, CPU) describe the process, not one app:
 * they are collected once per process, however many apps the tests build in it.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 10 });
  }
  return processRegistry;
}

export type StoreOperation =
  | 'register'
  | 'put'
  | 'get'
  | 'list'
  | 'update'
  | 'recordHealth'
  | 'deregister'
  | 'import'
  | 'heartbeat'
  | 'sweep'
  | 'eventsSince'
  | 'revision'
  | 'count'
  | 'census';

/**
 * The Prometheus metrics of one app. Gauges are read at scrape time from the census and the
 * feed; the hot path (every request, every store call) only observes a number.
 */
export class RegistryMetrics {
  private readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly requestSeriesByKey = new Map<string, ReturnType<Histogram<'method' | 'route' | 'status_code'>['labels']>>();
  private readonly storeDuration: Histogram<'operation'>;
  private readonly heartbeats: Counter;
  private stopListening = () => {};

  constructor() {
    const registers = [this.registry];
    this.heartbeats = new Counter({ name: `${PREFIX}heartbeats_total`, help: 'Heartbeats accepted by this server.', registers });
    this.httpDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'HTTP request duration by route pattern (blocking queries include their wait; event streams are left out).',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600],
      registers,
    });
    this.storeDuration = new Histogram({
      name: `${PREFIX}store_operation_duration_seconds`,
      help: 'Time spent in each store operation.',
      labelNames: ['operation'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
  }

  /**
   * Adds what the feed and the census know. A second step, because the feed reads through
   * the instrumented store, which needs this object first.
   */
  follow(feed: ChangeFeed, census: () => Promise<CensusLine[]>, mirrorLag?: () => MirrorLag): void {
    const registers = [this.registry];
    if (mirrorLag) {
      new Gauge({
        name: `${PREFIX}mirror_lag_revisions`,
        help: "PostgreSQL replicas: revisions committed that this replica's in-memory copy of the registry has not applied yet.",
        registers,
        collect() {
          this.set(mirrorLag().revisions);
        },
      });
      new Gauge({
        name: `${PREFIX}mirror_lag_seconds`,
        help: "PostgreSQL replicas: how long this replica's copy has trailed the database (0 when current).",
        registers,
        collect() {
          this.set(mirrorLag().ms / 1000);
        },
      });
      new Gauge({
        name: `${PREFIX}mirror_current`,
        help: "PostgreSQL replicas: 1 when this replica's copy is current and reads are answered, 0 while it loads or has lost LISTEN (reads answer 503).",
        registers,
        collect() {
          this.set(mirrorLag().state === 'current' ? 1 : 0);
        },
      });
    }
    new Gauge({
      name: `${PREFIX}vms`,
      help: 'Registered VMs by role, status and staleness (stale: running without a heartbeat for longer than REGISTRY_STALE_AFTER).',
      labelNames: ['role', 'status', 'stale'] as const,
      registers,
      async collect() {
        for (const line of await census()) this.set({ role: line.role, status: line.status, stale: String(line.stale) }, line.count);
      },
    });
    new Gauge({
      name: `${PREFIX}revision`,
      help: 'Newest registry revision this server has seen; compare across replicas to see one lagging.',
      registers,
      collect() {
        this.set(feed.revision);
      },
    });
    new Gauge({
      name: `${PREFIX}sse_watchers`,
      help: 'Open event streams (GET /registry/events) on this server.',
      registers,
      collect() {
        this.set(feed.counts.watchers);
      },
    });
    new Gauge({
      name: `${PREFIX}blocking_queries`,
      help: 'Blocking queries (?index=) waiting on this server.',
      registers,
      collect() {
        this.set(feed.counts.waiting);
      },
    });
    const changes = {
      registered: new Counter({ name: `${PREFIX}registrations_total`, help: 'VMs registered (POST, PUT of a new id, import), registry-wide.', registers }),
      deregistered: new Counter({ name: `${PREFIX}deregistrations_total`, help: 'VMs deregistered by a client, registry-wide.', registers }),
      reaped: new Counter({ name: `${PREFIX}reaps_total`, help: 'Stale VMs deregistered by the reaper, registry-wide.', registers }),
    };
    // From the feed, so that every replica reports the same registry-wide totals (aggregate with max, not sum).
    this.stopListening = feed.observe((event) => {
      if (event.type in changes) changes[event.type as keyof typeof changes].inc();
    });
  }

  /** An onResponse hook. The route pattern, never the raw URL, keeps one series per route rather than one per VM. */
  readonly observeRequest = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (!STREAMING_ROUTES.has(route)) this.requestSeries(request.method, route, reply.statusCode).observe(reply.elapsedTime / 1000);
    done();
  };

  /** One histogram child per method, route and status, looked up once rather than hashed from labels per request. */
  private requestSeries(method: string, route: string, status: number) {
    const key = `${method} ${route} ${status}`;
    let series = this.requestSeriesByKey.get(key);
    if (!series) this.requestSeriesByKey.set(key, (series = this.httpDuration.labels({ method, route, status_code: status })));
    return series;
  }

  /** A timer for one store operation: start() answers the function to call when it has finished. */
  storeTimer(operation: StoreOperation): { start(): () => void } {
    const series = this.storeDuration.labels({ operation });
    return { start: () => series.startTimer() };
  }

  /** The health checker's series, created only when checks are on. */
  healthChecks(): HealthCheckObserver {
    const registers = [this.registry];
    const checks = new Counter({
      name: `${PREFIX}health_checks_total`,
      help: 'Health checks run by this server, by result (pass or fail).',
      labelNames: ['result'] as const,
      registers,
    });
    const failures = new Counter({
      name: `${PREFIX}health_check_failures_total`,
      help: 'Failed health checks by reason: status (not 2xx), timeout, connection, refused (REGISTRY_HEALTH_HOSTS).',
      labelNames: ['reason'] as const,
      registers,
    });
    const latency = new Histogram({
      name: `${PREFIX}health_check_duration_seconds`,
      help: 'Time from the start of a health check to its verdict.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const overdue = new Counter({
      name: `${PREFIX}health_checks_overdue_total`,
      help: 'Health checks started later than their interval by more than REGISTRY_HEALTH_TIMEOUT, or not started in it at all.',
      registers,
    });
    const services = new Gauge({
      name: `${PREFIX}health_services`,
      help: 'Checked services by health status, as this server saw them at the start of its last round.',
      labelNames: ['status'] as const,
      registers,
    });
    const restarts = new Counter({
      name: `${PREFIX}health_checker_restarts_total`,
      help: 'Times the health checker thread stopped unasked and was started again.',
      registers,
    });
    for (const result of ['pass', 'fail']) checks.labels({ result });
    for (const reason of FAILURE_REASONS) failures.labels({ reason });
    return {
      tally({ passed, failed, seconds, overdue: late }) {
        for (const value of seconds) latency.observe(value);
        checks.inc({ result: 'pass' }, passed);
        let failedTotal = 0;
        for (const reason of FAILURE_REASONS) {
          failedTotal += failed[reason];
          if (failed[reason] > 0) failures.inc({ reason }, failed[reason]);
        }
        checks.inc({ result: 'fail' }, failedTotal);
        overdue.inc(late);
      },
      statuses(counts) {
        for (const [status, count] of Object.entries(counts)) services.set({ status }, count);
      },
      restarted: () => restarts.inc(),
    };
  }

  /** Blocking queries (?index=) woken by a change, and those of them whose answer then had nothing new. */
  blockingWakeups(): WakeupCounter {
    const registers = [this.registry];
    const woken = new Counter({
      name: `${PREFIX}blocking_wakeups_total`,
      help: 'Blocking queries woken before their wait was over: by a change that concerns their filter, or by a feed reset.',
      registers,
    });
    const unchanged = new Counter({
      name: `${PREFIX}blocking_wakeups_unchanged_total`,
      help: 'Wake-ups whose answer was the one the client had (a VM came and went before the read); the query waits on.',
      registers,
    });
    return { woken: () => woken.inc(), unchanged: () => unchanged.inc() };
  }

  countHeartbeat(): void {
    this.heartbeats.inc();
  }

  async render(): Promise<{ contentType: string; text: string }> {
    const merged = Registry.merge([processMetrics(), this.registry]);
    return { contentType: merged.contentType, text: await merged.metrics() };
  }

  close(): void {
    this.stopListening();
  }
}
