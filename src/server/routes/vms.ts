import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { ErrorSchema } from '../../domain/schemas/error.js';
import { DiscoverQuerySchema, ListWithIndexSchema, ReadHeadersSchema, RoleParamsSchema, VmIdParamsSchema } from '../../domain/schemas/query.js';
import {
  DeletedSchema,
  HeartbeatSchema,
  RegistrationSchema,
  ReplacementSchema,
  VmListSchema,
  VmSchema,
  VmUpdateSchema,
} from '../../domain/schemas/vm.js';
import { NotFoundError } from '../../domain/errors.js';
import { normaliseRegistration, normaliseUpdate } from '../../domain/vm.js';
import { discoverFilter, DISCOVERABLE, listFilter, type ListFilter, type RegistryStore } from '../../store/store.js';
import { ownerRestriction } from '../http/auth.js';
import { CallerQuota } from '../http/caller-quota.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { BadRequestError } from '../http/errors.js';
import { etag, parseIfMatch } from '../http/if-match.js';
import { blockingAnswer, type WakeupCounter } from '../http/blocking-query.js';

export interface VmRoutesOptions {
  store: RegistryStore;
  feed: ChangeFeed;
  /** Blocking queries (?index=) each caller may have waiting at once. */
  maxWaiting: number;
  /** REGISTRY_HEALTH_CHECKS=on: discover leaves out VMs with a critical service unless ?health=any. */
  healthChecks?: boolean;
  /** Counts vm_registry_blocking_wakeups_total and vm_registry_blocking_wakeups_unchanged_total. */
  wakeups?: WakeupCounter;
}

const blockingQueryLimit = { ...ErrorSchema, description: 'The caller already has REGISTRY_MAX_WATCHERS blocking queries waiting.' };
const read = { scope: 'read' as const };
const write = { scope: 'write' as const };
/**
 * Sends bytes a store prepared as the exact answer (see RegistryStore.listJson): Fastify sends
 * a Buffer as it is, skipping the schema serializer.
 */
const sendPrepared = (reply: FastifyReply, body: Buffer) => reply.type('application/json; charset=utf-8').send(body);
const IfMatchHeaders = Type.Object({ 'if-match': Type.Optional(Type.String()) });

/** agent-services' /registry endpoints, plus PUT. Mounted under /registry. */
export const vmRoutes: FastifyPluginAsyncTypebox<VmRoutesOptions> = async (app, { store, feed, maxWaiting, healthChecks, wakeups }) => {
  const revision = () => store.revision();
  const blocking = { feed, waiting: new CallerQuota(maxWaiting), wakeups };
  /** Answers a listing, held first when the query is a blocking one; X-Registry-Index is the revision it is current as of. */
  const sendListing = async (reply: FastifyReply, query: { index?: string; wait?: string }, filter: ListFilter) => {
    const answer = await blockingAnswer(blocking, query, reply, filter, () => store.listJson(filter), revision);
    reply.header('x-registry-index', answer.revision);
    return sendPrepared(reply, answer.body);
  };

  app.post(
    '/vms',
    { config: write, schema: { summary: 'Register a VM', body: RegistrationSchema, response: { 201: VmSchema, 409: ErrorSchema } } },
    async (request, reply) => {
      const vm = await store.register({ ...normaliseRegistration(request.body), owner: request.principal?.name });
      return reply.code(201).header('etag', etag(vm.revision)).send(vm);
    },
  );

  app.put(
    '/vms/:id',
    {
      config: write,
      schema: {
        summary: 'Register or replace a VM (idempotent)',
        params: VmIdParamsSchema,
        headers: IfMatchHeaders,
        body: ReplacementSchema,
        response: { 200: VmSchema, 201: VmSchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (request.body.id !== undefined && request.body.id !== id) {
        throw new BadRequestError(`body id "${request.body.id}" does not match the id in the path "${id}"`);
      }
      const ifRevision = parseIfMatch(request.headers['if-match']);
      const { vm, created } = await store.put(
        { ...normaliseRegistration({ ...request.body, id }), owner: request.principal?.name },
        { ifRevision, owner: ownerRestriction(request) },
      );
      return reply.code(created ? 201 : 200).header('etag', etag(vm.revision)).send(vm);
    },
  );

  app.get(
    '/vms',
    {
      config: read,
      schema: {
        summary: 'List VMs (a blocking query with ?index=&wait=)',
        querystring: ListWithIndexSchema,
        headers: ReadHeadersSchema,
        response: { 200: VmListSchema, 429: blockingQueryLimit },
      },
    },
    async (request, reply) => {
      const { role, status, stale, health, service } = request.query;
      return sendListing(
        reply,
        request.query,
        listFilter({ role, status, stale: stale === undefined ? undefined : stale === 'true', health: health && [health], service }),
      );
    },
  );

  app.get(
    '/vms/:id',
    { config: read, schema: { summary: 'Get one VM', params: VmIdParamsSchema, headers: ReadHeadersSchema, response: { 200: VmSchema } } },
    async (request, reply) => {
      const vm = await store.getJson(request.params.id);
      if (!vm) throw new NotFoundError(request.params.id);
      reply.header('etag', etag(vm.revision));
      return sendPrepared(reply, vm.body);
    },
  );

  app.patch(
    '/vms/:id',
    {
      config: write,
      schema: {
        summary: 'Update name, status, address, services or metadata',
        params: VmIdParamsSchema,
        headers: IfMatchHeaders,
        body: VmUpdateSchema,
        response: { 200: VmSchema },
      },
    },
    async (request, reply) => {
      const ifRevision = parseIfMatch(request.headers['if-match']);
      const vm = await store.update(request.params.id, normaliseUpdate(request.body), { ifRevision, owner: ownerRestriction(request) });
      return reply.header('etag', etag(vm.revision)).send(vm);
    },
  );

  app.delete(
    '/vms/:id',
    {
      config: write,
      schema: {
        summary: 'Deregister a VM',
        params: VmIdParamsSchema,
        headers: IfMatchHeaders,
        response: { 200: DeletedSchema },
      },
    },
    async (request) => {
      const ifRevision = parseIfMatch(request.headers['if-match']);
      const vm = await store.deregister(request.params.id, { ifRevision, owner: ownerRestriction(request) });
      return { deleted: true as const, id: vm.id };
    },
  );

  app.post(
    '/vms/:id/heartbeat',
    {
      config: write,
      schema: { summary: 'Heartbeat: refresh lastSeen', params: VmIdParamsSchema, response: { 200: HeartbeatSchema } },
    },
    async (request) => store.heartbeat(request.params.id, { owner: ownerRestriction(request) }),
  );

  app.get(
    '/discover/:role',
    {
      config: read,
      schema: {
        summary: 'Discover running, non-stale VMs of a role (a blocking query with ?index=&wait=)',
        params: RoleParamsSchema,
        querystring: DiscoverQuerySchema,
        headers: ReadHeadersSchema,
        response: { 200: VmListSchema, 429: blockingQueryLimit },
      },
    },
    async (request, reply) => {
      const { health, service } = request.query;
      const healthy = health === 'any' ? undefined : health !== undefined ? [health] : healthChecks ? DISCOVERABLE : undefined;
      return sendListing(reply, request.query, discoverFilter(request.params.role, { health: healthy, service }));
    },
  );
};
