import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { RegistryClient, RegistryError, type Role } from '../src/client/index.js';
import { REGISTRY_TOOLS } from '../src/tools/index.js';
import { FAST_CHECKS, Target } from './support/health-target.js';
import { CLI, startServer, tempDir, type ServerProcess } from './support/server-process.js';
import { writeTokensFile } from './support/tokens.js';

const dir = tempDir();
let server: ServerProcess;
const TOKENS = { admin: 'admin-secret', pool: 'pool-secret', reader: 'reader-secret' };

/** The real `vm-registry mcp`, spawned by the SDK's stdio transport with only the environment given. */
async function stdioClient(env: Record<string, string>): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp'], env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk));
  const client = new Client({ name: 'mcp-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, stderr: () => stderr };
}

/** A remote agent: one URL and a token. */
async function httpClient(token: string | undefined): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: token ? { authorization: `Bearer ${token}` } : {} },
  });
  const client = new Client({ name: 'mcp-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

const TRANSPORTS: Record<string, () => Promise<Client>> = {
  stdio: async () => (await stdioClient({ VERS_INFRA_URL: server.url, VERS_AUTH_TOKEN: TOKENS.admin })).client,
  'Streamable HTTP': () => httpClient(TOKENS.admin),
};

const rest = (token = TOKENS.admin) => new RegistryClient({ url: server.url, token });
const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;
const text = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');

function registration(id: string, role: Role = 'lieutenant') {
  return { id, name: `${id}-name`, role, address: `${id}.vm.vers.sh`, services: [{ name: 'pi-rpc', port: 3001 }] };
}

/** Resolves with the next resources/updated notification for this URI. */
function nextUpdate(client: Client, uri: string): Promise<string> {
  return new Promise((resolve) => {
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
      if (notification.params.uri === uri) resolve(notification.params.uri);
    });
  });
}

describe('MCP server, with the SDK\'s own Client', () => {
  before(async () => {
    const tokensFile = writeTokensFile(join(dir.path, 'tokens.json'), [
      ['admin', TOKENS.admin, ['admin']],
      ['pool', TOKENS.pool, ['read', 'write']],
      ['reader', TOKENS.reader, ['read']],
    ]);
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db'), REGISTRY_TOKENS_FILE: tokensFile } });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  for (const [transportName, connect] of Object.entries(TRANSPORTS)) {
    describe(`over ${transportName}`, () => {
      const prefix = transportName === 'stdio' ? 'stdio' : 'http';

      it('lists the registry tools, each with its TypeBox parameters as its input JSON Schema', async () => {
        const client = await connect();
        const { tools } = await client.listTools();
        assert.deepEqual(
          tools.map((tool) => tool.name),
          REGISTRY_TOOLS.map((tool) => tool.name),
        );
        for (const tool of REGISTRY_TOOLS) {
          const listed = tools.find((candidate) => candidate.name === tool.name)!;
          assert.deepEqual(listed.inputSchema, JSON.parse(JSON.stringify(tool.parameters)), `${tool.name} schema`);
          assert.equal(listed.description, tool.description);
        }
        await client.close();
      });

      it('each tool acts on the registry, as REST then shows', async () => {
        const client = await connect();
        const id = `${prefix}-lt-1`;

        const registered = await call(client, 'registry_register', { ...registration(id), metadata: { task: 'invoices' } });
        assert.equal(registered.isError, undefined, text(registered));
        assert.match(text(registered), new RegExp(`^Registered ${id}-name \\(id ${id}, lieutenant, running\\)`));
        assert.equal((registered.structuredContent as any).created, true);
        const stored = await rest().get(id);
        assert.deepEqual(stored.metadata, { task: 'invoices' });
        assert.equal(stored.registeredBy, 'mcp-test', 'registeredBy defaults to the MCP client\'s name');

        const replaced = await call(client, 'registry_register', { ...registration(id), name: 'renamed', replace: true });
        assert.match(text(replaced), /^Replaced renamed/);
        assert.equal((await rest().get(id)).name, 'renamed');

        const listed = await call(client, 'registry_list', { role: 'lieutenant' });
        assert.ok((listed.structuredContent as any).vms.some((vm: { id: string }) => vm.id === id));

        const got = await call(client, 'registry_get', { id });
        assert.equal((got.structuredContent as any).vm.id, id);

        const discovered = await call(client, 'registry_discover', { role: 'lieutenant' });
        assert.match(text(discovered), /running lieutenant VMs?, newest first/);
        assert.ok((discovered.structuredContent as any).vms.some((vm: { id: string }) => vm.id === id));

        const before = (await rest().get(id)).lastSeen;
        await new Promise((resolve) => setTimeout(resolve, 5));
        const beat = await call(client, 'registry_heartbeat', { id });
        assert.match(text(beat), new RegExp(`^Heartbeat recorded for ${id}`));
        assert.ok((await rest().get(id)).lastSeen > before, 'lastSeen moved');

        const updated = await call(client, 'registry_update', { id, status: 'paused' });
        assert.match(text(updated), /^Updated renamed \(id [^,]+, lieutenant, paused\)/);
        assert.equal((await rest().get(id)).status, 'paused');

        const waited = await call(client, 'registry_wait', { role: 'lieutenant', id, timeoutSeconds: 1 });
        assert.equal(waited.isError, undefined);
        assert.match(text(waited), /^Gave up after 1s: no running lieutenant with id .* is registered and heartbeating/);
        assert.equal((waited.structuredContent as any).found, false);

        const deregistered = await call(client, 'registry_deregister', { id });
        assert.equal(text(deregistered), `Deregistered ${id}.`);
        await assert.rejects(rest().get(id), (error: RegistryError) => error.statusCode === 404);
        await client.close();
      });

      it('registry_wait answers as soon as the VM it waits for is running', async () => {
        const client = await connect();
        const name = `${prefix}-late-lt`;
        const waiting = call(client, 'registry_wait', { name, timeoutSeconds: 30 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        await rest().register({ ...registration(`${prefix}-late`), name, registeredBy: 'test' });
        const result = await waiting;
        assert.equal(result.isError, undefined, text(result));
        assert.match(text(result), new RegExp(`^Found ${name} \\(id ${prefix}-late, lieutenant, running\\)`));
        assert.equal((result.structuredContent as any).vm.id, `${prefix}-late`);
        await client.close();
      });

      it('a bad argument is an isError result naming the field and the rule as the HTTP API does, not a protocol error', async () => {
        const client = await connect();
        const unknownRole = await call(client, 'registry_discover', { role: 'captain' });
        assert.equal(unknownRole.isError, true);
        assert.match(text(unknownRole), /^Invalid arguments: role must be one of infra, lieutenant, worker, golden, custom \(got "captain"\)/);
        const missingId = await call(client, 'registry_get', {});
        assert.equal(missingId.isError, true);
        assert.match(text(missingId), /id is required/);
        const badPort = await call(client, 'registry_register', { ...registration(`${prefix}-bad`), services: [{ name: 'x', port: 70000 }] });
        assert.equal(badPort.isError, true);
        assert.match(text(badPort), /services\[0\]\.port must be at most 65535/);
        const notThere = await call(client, 'registry_get', { id: 'no-such-vm' });
        assert.equal(notThere.isError, true);
        assert.match(text(notThere), /^Registry answered 404: .*Call registry_list to see what is registered/);
        await assert.rejects(rest().get(`${prefix}-bad`), (error: RegistryError) => error.statusCode === 404, 'nothing was written');
        await client.close();
      });

      it('a subscribed client hears when its VM, or its role\'s running set, changes over REST', async () => {
        const client = await connect();
        const id = `${prefix}-watched`;
        await rest().register({ ...registration(id, 'worker'), registeredBy: 'test' });

        const vmUri = `registry://vms/${id}`;
        const read = await client.readResource({ uri: vmUri });
        assert.equal(JSON.parse((read.contents[0] as { text: string }).text).id, id);
        await client.subscribeResource({ uri: vmUri });
        const vmUpdate = nextUpdate(client, vmUri);
        await rest().update(id, { status: 'paused' });
        assert.equal(await vmUpdate, vmUri);

        const roleUri = 'registry://discover/golden';
        await client.subscribeResource({ uri: roleUri });
        const roleUpdate = nextUpdate(client, roleUri);
        await rest().register({ ...registration(`${prefix}-golden`, 'golden'), registeredBy: 'test' });
        assert.equal(await roleUpdate, roleUri);
        const running = JSON.parse(((await client.readResource({ uri: roleUri })).contents[0] as { text: string }).text);
        assert.deepEqual(running.vms.map((vm: { id: string }) => vm.id), [`${prefix}-golden`]);
        await rest().deregister(`${prefix}-golden`);
        await client.close();
      });

      it('offers the resource templates and the skill as a prompt', async () => {
        const client = await connect();
        const { resourceTemplates } = await client.listResourceTemplates();
        assert.deepEqual(resourceTemplates.map((template) => template.uriTemplate), ['registry://vms/{id}', 'registry://discover/{role}']);
        const { prompts } = await client.listPrompts();
        assert.deepEqual(prompts.map((prompt) => prompt.name), ['registry_guide']);
        const guide = await client.getPrompt({ name: 'registry_guide' });
        const guideText = (guide.messages[0].content as { text: string }).text;
        assert.match(guideText, /After creating a persistent VM/);
        assert.match(guideText, /registry_discover/);
        await client.close();
      });
    });
  }

  describe('stdio: vm-registry mcp', () => {
    it('without VERS_INFRA_URL, a tool call says how to set it, and the server keeps serving', async () => {
      const { client } = await stdioClient({});
      const result = await call(client, 'registry_discover', { role: 'infra' });
      assert.equal(result.isError, true);
      assert.match(text(result), /no registry URL: set VERS_INFRA_URL/);
      assert.match(text(result), /restart the MCP server/);
      assert.equal((await client.listTools()).tools.length, REGISTRY_TOOLS.length, 'still serving');
      await client.close();
    });

    it('an unreachable registry is a tool error saying so; logs go to stderr', async () => {
      const { client } = await stdioClient({ VERS_INFRA_URL: 'http://127.0.0.1:1' });
      const result = await call(client, 'registry_list', {});
      assert.equal(result.isError, true);
      assert.match(text(result), /cannot reach the registry at http:\/\/127\.0\.0\.1:1/);
      await client.close();
    });

    it('takes --url and --token', async () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'mcp', '--url', server.url, '--token', TOKENS.reader],
        env: {},
        stderr: 'pipe',
      });
      const client = new Client({ name: 'mcp-test', version: '1.0.0' });
      await client.connect(transport);
      const listed = await call(client, 'registry_list', {});
      assert.equal(listed.isError, undefined, text(listed));
      const refused = await call(client, 'registry_register', registration('stdio-reader-vm'));
      assert.equal(refused.isError, true);
      assert.match(text(refused), /^Registry answered 403: token "reader" lacks the "write" scope/);
      await client.close();
    });
  });

  describe('Streamable HTTP: /mcp behind the registry\'s tokens', () => {
    it('without a token, or with an unknown one, /mcp answers 401 as /registry does', async () => {
      const initialize = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } },
      };
      for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
        const response = await fetch(`${server.url}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
          body: JSON.stringify(initialize),
        });
        assert.equal(response.status, 401);
        assert.match(((await response.json()) as { error: string }).error, /authentication required|not valid/);
      }
      await assert.rejects(httpClient(undefined), (error: { code?: number }) => error.code === 401, 'the SDK client is refused too');
    });

    it('a read token reads; its write tools fail with a clear error, and nothing is written', async () => {
      const client = await httpClient(TOKENS.reader);
      const listed = await call(client, 'registry_list', {});
      assert.equal(listed.isError, undefined, text(listed));
      const refused = await call(client, 'registry_register', registration('http-reader-vm'));
      assert.equal(refused.isError, true);
      assert.match(text(refused), /^Registry answered 403: token "reader" lacks the "write" scope this request needs/);
      await assert.rejects(rest().get('http-reader-vm'), (error: RegistryError) => error.statusCode === 404);
      await client.close();
    });

    it('a write token may change only its own VMs, as over REST', async () => {
      await rest().register({ ...registration('http-admins-vm'), registeredBy: 'test' });
      const client = await httpClient(TOKENS.pool);
      const own = await call(client, 'registry_register', registration('http-pool-vm'));
      assert.equal(own.isError, undefined, text(own));
      const others = await call(client, 'registry_update', { id: 'http-admins-vm', status: 'stopped' });
      assert.equal(others.isError, true);
      assert.match(text(others), /^Registry answered 403: .*only the registrant \(or an admin token\)/);
      assert.equal((await rest().get('http-admins-vm')).status, 'running');
      await client.close();
    });

    it('a session answers only the token that opened it', async () => {
      const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${TOKENS.pool}` } },
      });
      const client = new Client({ name: 'mcp-test', version: '1.0.0' });
      await client.connect(transport);
      const response = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKENS.reader}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': transport.sessionId!,
          'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      assert.equal(response.status, 403);
      assert.deepEqual(await response.json(), { error: 'this MCP session was opened with another token' });
      await client.close();
    });
  });
});

describe('MCP tools, against a registry that checks health', () => {
  let target: Target;
  let checking: ServerProcess;
  let client: Client;

  before(async () => {
    target = await Target.start();
    target.paths.set('/broken', 'fail');
    checking = await startServer({ env: { REGISTRY_DB: join(dir.path, 'checking.db'), ...FAST_CHECKS, REGISTRY_HEALTH_HOSTS: '127.0.0.1' } });
    const registry = new RegistryClient({ url: checking.url });
    const services = (healthPath: string) => [{ name: 'pi-rpc', port: target.port, healthPath }, { name: 'board', port: 3000 }];
    await registry.register({ ...registration('lt-up'), address: '127.0.0.1', services: services('/health'), registeredBy: 'mcp-test' });
    await registry.register({ ...registration('lt-down'), address: '127.0.0.1', services: services('/broken'), registeredBy: 'mcp-test' });
    // Two failed rounds, about 600 ms, make lt-down critical.
    for (let round = 0; (await registry.list({ health: 'critical' })).count === 0; round++) {
      assert.ok(round < 100, 'lt-down never became critical');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    client = (await stdioClient({ VERS_INFRA_URL: checking.url })).client;
  });
  after(async () => {
    await client?.close();
    await checking?.stop();
    await target?.close();
  });

  const ids = (result: CallToolResult) => (result.structuredContent as { vms: Array<{ id: string }> }).vms.map((vm) => vm.id);

  it('registry_list and registry_discover take health and service as ?health= and ?service= do', async () => {
    assert.deepEqual(ids(await call(client, 'registry_list', { health: 'critical' })), ['lt-down']);
    assert.deepEqual(ids(await call(client, 'registry_list', { health: 'passing', service: 'pi-rpc' })), ['lt-up']);
    // board has no healthPath: by its state alone both VMs pass.
    assert.deepEqual(ids(await call(client, 'registry_list', { health: 'passing', service: 'board' })), ['lt-down', 'lt-up']);

    const discovered = await call(client, 'registry_discover', { role: 'lieutenant' });
    assert.deepEqual(ids(discovered), ['lt-up']);
    assert.doesNotMatch(text(discovered), /critical/);
    const all = await call(client, 'registry_discover', { role: 'lieutenant', health: 'any' });
    assert.deepEqual(ids(all), ['lt-down', 'lt-up']);
    assert.match(text(all), /- lt-down-name \(id lt-down, .*; pi-rpc critical since \S+: HTTP 500\n- lt-up-name /);
    const byService = await call(client, 'registry_discover', { role: 'lieutenant', service: 'metrics' });
    assert.equal(text(byService), 'No running lieutenant VMs offering metrics are registered (or none has heartbeated recently).');
  });

  it('a health value the registry does not know is an isError result naming the parameter', async () => {
    const result = await call(client, 'registry_discover', { role: 'lieutenant', health: 'sick' });
    assert.equal(result.isError, true);
    assert.match(text(result), /^Invalid arguments: health must be one of any, passing, critical, unknown \(got "sick"\)/);
  });
});
