import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const dir = tempDir();
after(() => dir.remove());

const WRITERS = 8;
const ROUNDS = 3;

const send = (url: string, method: string, body: unknown) =>
  fetch(url, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/** What the clients were told was committed, and what they had sent when the server died. */
interface Acknowledged {
  registered: Set<string>;
  /** Per updated VM: the last counter answered 200, and the last one sent. */
  counters: Map<string, { acked: number; sent: number }>;
}

/**
 * Writers run until the server dies under them: half register new VMs one after another,
 * half PATCH a counter into the metadata of their own VM. Only 2xx answers are counted.
 */
async function writeUntilKilled(server: ServerProcess, round: number, acknowledged: Acknowledged): Promise<void> {
  const registrar = async (writer: number) => {
    for (let i = 0; ; i++) {
      const id = `r${round}-w${writer}-${i}`;
      const response = await send(`${server.url}/registry/vms`, 'POST', {
        id, name: id, role: 'worker', address: `${id}.vm.vers.sh`, registeredBy: 'durability-test',
      });
      if (response.status !== 201) throw new Error(`unexpected ${response.status}`);
      acknowledged.registered.add(id);
    }
  };
  const updater = async (writer: number) => {
    const id = `counter-${writer}`;
    const counter = acknowledged.counters.get(id)!;
    for (;;) {
      const next = counter.sent + 1;
      counter.sent = next;
      const response = await send(`${server.url}/registry/vms/${id}`, 'PATCH', { metadata: { counter: next } });
      if (response.status !== 200) throw new Error(`unexpected ${response.status}`);
      counter.acked = next;
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => (w % 2 === 0 ? registrar(w) : updater(w)).catch(() => undefined));
  await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
  await server.kill();
  await Promise.all(writers);
}

describe('durability', () => {
  it('SIGKILL at a random instant under concurrent writes loses no acknowledged write, round after round', async () => {
    const env = { REGISTRY_DB: join(dir.path, 'registry.db') };
    const acknowledged: Acknowledged = { registered: new Set(), counters: new Map() };
    let server = await startServer({ env });
    for (let w = 1; w < WRITERS; w += 2) {
      const id = `counter-${w}`;
      const response = await send(`${server.url}/registry/vms`, 'POST', {
        id, name: id, role: 'worker', address: 'x', registeredBy: 'durability-test', metadata: { counter: 0 },
      });
      assert.equal(response.status, 201);
      acknowledged.counters.set(id, { acked: 0, sent: 0 });
    }

    for (let round = 0; round < ROUNDS; round++) {
      await writeUntilKilled(server, round, acknowledged);
      server = await startServer({ env });
      const stored = new Map<string, { metadata?: { counter?: number } }>(
        (await (await fetch(`${server.url}/registry/vms`)).json()).vms.map((vm: { id: string }) => [vm.id, vm]),
      );
      const lost = [...acknowledged.registered].filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `round ${round}: acknowledged registrations missing after SIGKILL`);
      for (const [id, { acked, sent }] of acknowledged.counters) {
        const counter = stored.get(id)?.metadata?.counter ?? -1;
        // An update in flight at the kill may or may not have committed; an acknowledged one must have.
        assert.ok(counter >= acked && counter <= sent, `round ${round}: ${id} holds ${counter}, acknowledged ${acked}, sent ${sent}`);
      }
      const counters = [...acknowledged.counters.values()].map((c) => c.acked);
      assert.ok(acknowledged.registered.size > 0 && counters.some((c) => c > 0), 'the writers made progress');
    }
    await server.stop();
  });
});
