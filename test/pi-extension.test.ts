import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { fauxAssistantMessage, fauxText, fauxToolCall, registerFauxProvider, type FauxProviderRegistration } from '@mariozechner/pi-ai';
import {
  AuthStorage,
  createAgentSession,
  DefaultResourceLoader,
  ModelRegistry,
  SessionManager,
  SettingsManager,
  type AgentSession,
} from '@mariozechner/pi-coding-agent';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { RegistryClient, RegistryError } from '../src/client/index.js';
import { aRegistration } from '../src/testing/fixtures.js';
import { FAST_CHECKS, Target } from './support/health-target.js';
import { CLI, startServer, tempDir, type ServerProcess } from './support/server-process.js';

/** The package root: pi installs it from here as it would from npm, reading package.json's "pi" manifest. */
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface ToolResult {
  role: 'toolResult';
  toolName: string;
  isError: boolean;
  content: Array<{ type: string; text?: string }>;
  details: any;
}

const dir = tempDir();
let server: ServerProcess;
let faux: FauxProviderRegistration;
const savedEnv = { ...process.env };

/** An agent session with this package installed, its model scripted by pi-ai's faux provider. */
async function agentSession(): Promise<{ session: AgentSession; loader: DefaultResourceLoader }> {
  const settingsManager = SettingsManager.inMemory({ packages: [PACKAGE_ROOT] });
  const loader = new DefaultResourceLoader({
    cwd: dir.path,
    agentDir: join(dir.path, 'agent'),
    settingsManager,
    noContextFiles: true,
  });
  await loader.reload();
  const authStorage = AuthStorage.inMemory();
  const model = faux.getModel();
  authStorage.setRuntimeApiKey(model.provider, 'faux-key');
  const { session } = await createAgentSession({
    cwd: dir.path,
    agentDir: join(dir.path, 'agent'),
    model,
    authStorage,
    modelRegistry: ModelRegistry.inMemory(authStorage),
    resourceLoader: loader,
    settingsManager,
    sessionManager: SessionManager.inMemory(),
  });
  // What pi's modes do once the UI is ready: this emits session_start to extensions.
  await session.bindExtensions({});
  return { session, loader };
}

const toolResults = (session: AgentSession) =>
  session.messages.filter((message) => (message as { role: string }).role === 'toolResult') as unknown as ToolResult[];
const text = (result: ToolResult) => result.content.map((part) => part.text ?? '').join('');

describe('pi extension, loaded by pi-coding-agent from the package manifest', () => {
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
    faux = registerFauxProvider();
  });
  after(async () => {
    process.env = { ...savedEnv };
    faux.unregister();
    await server.stop();
    dir.remove();
  });

  it('ships the tools and the skill through package.json "pi"', async () => {
    process.env.VERS_INFRA_URL = server.url;
    delete process.env.VERS_VM_ID;
    const { session, loader } = await agentSession();
    const errors = loader.getExtensions().errors;
    assert.deepEqual(errors, [], 'the extension loads without errors');
    const names = session.getAllTools().map((tool) => tool.name);
    for (const tool of ['registry_register', 'registry_list', 'registry_discover', 'registry_heartbeat', 'registry_get', 'registry_update', 'registry_deregister']) {
      assert.ok(names.includes(tool), `${tool} is registered`);
    }
    assert.ok(loader.getSkills().skills.some((skill) => skill.name === 'vm-registry'), 'the vm-registry skill is loaded');
    session.dispose();
  });

  it('exposes exactly the tools, descriptions and JSON Schemas that `vm-registry mcp` serves', async () => {
    process.env.VERS_INFRA_URL = server.url;
    delete process.env.VERS_VM_ID;
    const { session } = await agentSession();
    // The tools this package's extension registered, whatever they are: pi's built-ins come from elsewhere.
    const extension = fileURLToPath(new URL('../src/pi/index.js', import.meta.url));
    const piTools = session
      .getAllTools()
      .filter((tool) => tool.sourceInfo.path === extension)
      .map(({ name, description, parameters }) => ({ name, description, inputSchema: JSON.parse(JSON.stringify(parameters)) }));
    session.dispose();

    const mcp = new Client({ name: 'parity-test', version: '1.0.0' });
    await mcp.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp'], env: { VERS_INFRA_URL: server.url } }));
    const mcpTools = (await mcp.listTools()).tools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema }));
    await mcp.close();

    assert.ok(piTools.length > 0, 'the extension registered tools');
    assert.deepEqual(piTools, mcpTools);
  });

  it('an agent registers a lieutenant, then discovers it', async () => {
    process.env.VERS_INFRA_URL = server.url;
    delete process.env.VERS_VM_ID;
    // Without registeredBy, which the extension fills in.
    const { registeredBy: _, ...lieutenant } = aRegistration({ id: 'lt-billing-1', name: 'billing' });
    faux.setResponses([
      fauxAssistantMessage(
        fauxToolCall('registry_register', lieutenant),
        { stopReason: 'toolUse' },
      ),
      fauxAssistantMessage(fauxToolCall('registry_discover', { role: 'lieutenant' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('The billing lieutenant is registered and discoverable.')),
    ]);
    const { session } = await agentSession();
    await session.prompt('Register the billing lieutenant on lt-billing-1, then check that others can find it.');

    const stored = await new RegistryClient({ url: server.url }).get('lt-billing-1');
    assert.equal(stored.role, 'lieutenant');
    assert.equal(stored.registeredBy, 'pi-agent', 'registeredBy defaults to the agent');
    assert.deepEqual(stored.metadata, { task: 'process invoices' });

    const [registered, discovered] = toolResults(session);
    assert.equal(registered.toolName, 'registry_register');
    assert.equal(registered.isError, false);
    assert.match(text(registered), /^Registered billing \(id lt-billing-1, lieutenant, running\) at lt-billing-1\.vm\.vers\.sh/);
    assert.equal(discovered.toolName, 'registry_discover');
    assert.equal(discovered.isError, false);
    assert.match(text(discovered), /1 running lieutenant VM, newest first:\n- billing \(id lt-billing-1/);
    assert.match(text(discovered), /services pi-rpc:3001/);
    assert.equal(discovered.details.count, 1);
    assert.equal(discovered.details.vms[0].id, 'lt-billing-1');
    assert.equal(faux.getPendingResponseCount(), 0, 'the agent saw both results and finished');
    session.dispose();
  });

  it("accepts services[].protocol as a model fills it for agent-services' extension, and stores it", async () => {
    process.env.VERS_INFRA_URL = server.url;
    delete process.env.VERS_VM_ID;
    faux.setResponses([
      fauxAssistantMessage(
        fauxToolCall(
          'registry_register',
          aRegistration({
            id: 'infra-proto-1',
            name: 'infra',
            role: 'infra',
            services: [{ name: 'board', port: 3000, protocol: 'HTTP' }, { name: 'rpc', port: 50051, protocol: 'grpc' }],
          }),
        ),
        { stopReason: 'toolUse' },
      ),
      fauxAssistantMessage(fauxToolCall('registry_get', { id: 'infra-proto-1' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('Registered with its protocols.')),
    ]);
    const { session } = await agentSession();
    await session.prompt('Register the infra VM with its board (http) and rpc (grpc) services.');
    const [registered, got] = toolResults(session);
    assert.equal(registered.isError, false, text(registered));
    const services = [
      { name: 'board', port: 3000, protocol: 'http' },
      { name: 'rpc', port: 50051, protocol: 'grpc' },
    ];
    assert.deepEqual(registered.details.vm.services, services);
    assert.deepEqual((await new RegistryClient({ url: server.url }).get('infra-proto-1')).services, services);
    assert.equal(got.isError, false);
    assert.match(text(got), /services http:\/\/board:3000,grpc:\/\/rpc:50051/);
    assert.equal(got.details.vm.stale, false);
    session.dispose();
  });

  it('tells the agent what to do when a call fails', async () => {
    delete process.env.VERS_INFRA_URL;
    delete process.env.VERS_VM_ID;
    faux.setResponses([
      fauxAssistantMessage(fauxToolCall('registry_discover', { role: 'infra' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('I need the registry URL.')),
    ]);
    const { session } = await agentSession();
    await session.prompt('Find the infra VM.');
    const [result] = toolResults(session);
    assert.equal(result.isError, true);
    assert.match(text(result), /VERS_INFRA_URL/);
    assert.match(text(result), /export VERS_INFRA_URL=http:\/\//);

    process.env.VERS_INFRA_URL = server.url;
    faux.setResponses([
      fauxAssistantMessage(fauxToolCall('registry_get', { id: 'no-such-vm' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('It is not registered.')),
    ]);
    await session.prompt('Look up no-such-vm.');
    const notFound = toolResults(session).at(-1)!;
    assert.equal(notFound.isError, true);
    assert.match(text(notFound), /404: VM "no-such-vm" is not registered\. Call registry_list/);
    session.dispose();
  });

  it('registers its own VM at session start and marks it stopped when pi quits', async () => {
    process.env.VERS_INFRA_URL = server.url;
    process.env.VERS_VM_ID = 'agent-vm-7';
    process.env.VERS_AGENT_NAME = 'reviewer';
    process.env.VERS_AGENT_ROLE = 'lieutenant';
    const client = new RegistryClient({ url: server.url });
    const { session } = await agentSession();

    const registered = await eventually(() => client.get('agent-vm-7'));
    assert.equal(registered.name, 'reviewer');
    assert.equal(registered.role, 'lieutenant');
    assert.equal(registered.status, 'running');
    assert.equal(registered.address, 'agent-vm-7.vm.vers.sh');
    assert.ok((await client.discover('lieutenant')).vms.some((vm) => vm.id === 'agent-vm-7'));

    faux.setResponses([
      fauxAssistantMessage(fauxToolCall('registry_heartbeat', {}), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('Beat sent.')),
    ]);
    await session.prompt('Send a heartbeat for this VM.');
    const beat = toolResults(session).at(-1)!;
    assert.equal(beat.isError, false);
    assert.match(text(beat), /^Heartbeat recorded for agent-vm-7/);

    // What pi does on exit (AgentSessionRuntime.dispose): session_shutdown with reason "quit".
    await session.extensionRunner.emit({ type: 'session_shutdown', reason: 'quit' });
    session.dispose();
    assert.equal((await client.get('agent-vm-7')).status, 'stopped');
  });
});

describe('pi extension, against a registry that checks health', () => {
  let target: Target;
  let checking: ServerProcess;

  before(async () => {
    target = await Target.start();
    target.paths.set('/broken', 'fail');
    checking = await startServer({ env: { REGISTRY_DB: join(dir.path, 'checking.db'), ...FAST_CHECKS, REGISTRY_HEALTH_HOSTS: '127.0.0.1' } });
    faux = registerFauxProvider();
    const registry = new RegistryClient({ url: checking.url });
    const service = (healthPath: string) => [{ name: 'pi-rpc', port: target.port, healthPath }];
    await registry.register(aRegistration({ id: 'lt-up', name: 'billing', address: '127.0.0.1', services: service('/health') }));
    await registry.register(aRegistration({ id: 'wk-down', name: 'indexer', role: 'worker', address: '127.0.0.1', services: service('/broken') }));
    // Two failed rounds, about 600 ms, make wk-down critical.
    for (let round = 0; (await registry.list({ health: 'critical' })).count === 0; round++) {
      assert.ok(round < 100, 'wk-down never became critical');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  after(async () => {
    process.env = { ...savedEnv };
    faux.unregister();
    await checking.stop();
    await target.close();
  });

  it('registry_discover says which services are critical, since when and why, and why an answer is empty', async () => {
    process.env.VERS_INFRA_URL = checking.url;
    delete process.env.VERS_VM_ID;
    faux.setResponses([
      fauxAssistantMessage(fauxToolCall('registry_discover', { role: 'lieutenant' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxToolCall('registry_discover', { role: 'worker' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxToolCall('registry_discover', { role: 'worker', health: 'any', service: 'pi-rpc' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('The indexer is up but its pi-rpc fails.')),
    ]);
    const { session } = await agentSession();
    await session.prompt('Find a lieutenant and a worker.');
    const [lieutenants, workers, anyWorkers] = toolResults(session);
    const since = 'since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: HTTP 500';

    assert.equal(lieutenants.isError, false, text(lieutenants));
    assert.match(text(lieutenants), /^1 running lieutenant VM, newest first:\n- billing \(id lt-up, .*services pi-rpc:\d+\/health\(passing\), last seen [^;]+$/);

    assert.equal(workers.isError, false, text(workers));
    assert.match(
      text(workers),
      new RegExp(`^No running worker VM passes its health checks; left out for a critical service:\n- indexer \\(id wk-down, .*; pi-rpc critical ${since}\nPass health "any" to discover them anyway\\.$`),
    );
    assert.equal(workers.details.count, 0);

    assert.equal(anyWorkers.isError, false, text(anyWorkers));
    assert.match(text(anyWorkers), new RegExp(`^1 running worker VM offering pi-rpc, newest first:\n- indexer \\(id wk-down, .*/broken\\(critical\\), last seen .*; pi-rpc critical ${since}$`));
    assert.equal(anyWorkers.details.vms[0].id, 'wk-down');
    session.dispose();
  });
});

/** Retries a lookup that is expected to start failing with 404 until the background work lands. */
async function eventually<T>(probe: () => Promise<T>, timeout = 5000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (!(error instanceof RegistryError) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
