import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registration } from '../domain/schemas/vm.js';
import type { VmFields } from '../domain/vm.js';

/** The staleness threshold test stores and apps run with: the server's default. */
export const STALE_AFTER_MS = 5 * 60_000;

/**
 * The registration the API guide's first curl sends. Tests name only what they care about;
 * the address follows the id unless given, so `aRegistration({ id: 'x' })` is a coherent VM.
 */
export function aRegistration(overrides: Partial<Registration> = {}): Registration {
  const id = overrides.id ?? 'abc-123-def';
  return {
    id,
    name: 'billing-lt',
    role: 'lieutenant',
    address: `${id}.vm.vers.sh`,
    registeredBy: 'orchestrator',
    services: [{ name: 'pi-rpc', port: 3001 }],
    metadata: { task: 'process invoices' },
    ...overrides,
  };
}

/** A VM as a store receives it: validated, its status settled; the store suites call theirs vm-1. */
export function aVm({ status = 'running', ...fields }: Partial<VmFields> = {}): VmFields {
  return { ...aRegistration({ id: 'vm-1', ...fields }), status };
}

/** A fresh directory under the system's temporary one, for databases and files a test writes. */
export function tempDir(prefix = 'vm-registry-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
