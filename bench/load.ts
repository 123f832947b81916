import autocannon from 'autocannon';
import type { HttpScenario } from './scenarios.js';

/** One measured run of one contender. Latencies in ms. */
export interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  /** Answers with the status the scenario expects. */
  ok: number;
  /** Any other answer, connection error or timeout: non-zero means the figures lie. */
  failed: number;
  seconds: number;
}

type StatusCounts = Record<string, { count: number }>;

/** Drives `url` with the scenario's requests for `seconds`, over `connections` keep-alive connections. */
export async function drive(url: string, scenario: HttpScenario, seconds: number, connections: number): Promise<RunResult> {
  const result = await autocannon({
    url,
    connections: scenario.connections ?? connections,
    duration: seconds,
    // A list of 100k entries takes seconds under 32 connections; count it slow, not failed.
    timeout: 120,
    requests: [
      {
        setupRequest: (request) => {
          const { method, path, body } = scenario.next();
          return {
            ...request,
            method,
            path,
            body,
            headers: body === undefined ? {} : { 'content-type': 'application/json' },
          };
        },
      },
    ],
  });
  // The typings lag the library: autocannon 9 counts answers per status code.
  const byStatus = (result as unknown as { statusCodeStats: StatusCounts }).statusCodeStats;
  const ok = byStatus[String(scenario.expectStatus)]?.count ?? 0;
  const answered = Object.values(byStatus).reduce((sum, { count }) => sum + count, 0);
  return {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok,
    failed: answered - ok + result.errors,
    seconds: result.duration,
  };
}
