import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { ManualClock } from '../domain/clock.js';
import type { Registration } from '../domain/schemas/vm.js';
import { buildApp, type AppOptions } from '../server/app.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { aRegistration, STALE_AFTER_MS, tempDir } from './fixtures.js';

/** Where every test app starts its clock, so that answers can be asserted to the millisecond. */
export const START = '2026-11-27T12:00:00.000Z';

export interface TestApp {
  app: FastifyInstance;
  store: SqliteStore;
  clock: ManualClock;
  /** Injects a request and answers its status, JSON body (undefined when empty) and headers. */
  request(options: InjectOptions): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** POSTs aRegistration(overrides), insists on 201, and answers the entry. Fields are as sent: untrimmed, say. */
  register(overrides?: { [field in keyof Registration]?: unknown }): Promise<any>;
  close(): Promise<void>;
}

// One directory per test process: apps are left open by tests that end with the process.
let databases: { path: string; remove(): void } | undefined;
let opened = 0;
function nextDatabase(): string {
  if (!databases) {
    const dir = tempDir();
    process.on('exit', () => dir.remove());
    databases = dir;
  }
  return join(databases.path, `app-${opened++}.db`);
}

/** The application in-process, on a fresh SQLite file and a manual clock standing at START. */
export async function testApp(options: Omit<AppOptions, 'store' | 'clock'> = {}): Promise<TestApp> {
  const clock = new ManualClock(Date.parse(START));
  const store = openSqliteStore({ file: nextDatabase(), clock, staleAfterMs: STALE_AFTER_MS });
  const app = await buildApp({ ...options, store, clock });
  const request: TestApp['request'] = async (inject) => {
    const response = await app.inject(inject);
    const text = response.body;
    return { status: response.statusCode, body: text ? JSON.parse(text) : undefined, headers: response.headers };
  };
  return {
    app,
    store,
    clock,
    request,
    register: async (overrides = {}) => {
      const response = await request({ method: 'POST', url: '/registry/vms', payload: aRegistration(overrides as Partial<Registration>) });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      return response.body;
    },
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}
