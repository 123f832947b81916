import { Type } from '@sinclair/typebox';
import { RevisionSchema } from './query.js';
import { RoleSchema, VmIdSchema, type Vm } from './vm.js';

export const EVENT_TYPES = ['registered', 'updated', 'deregistered', 'stale', 'recovered', 'reaped'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One entry of the event log: a change, its revision, and the VM as it stood after it (before it, for removals). */
export interface RegistryEvent {
  type: EventType;
  revision: number;
  at: string;
  vm: Vm;
}

/**
 * Sent by GET /registry/events (event `reset`, no `id:`) when the server lost its place in the
 * event log: changes were missed, so list again; the stream goes on after `revision`.
 */
export interface RegistryReset {
  type: 'reset';
  revision: number;
}

export const EventsQuerySchema = Type.Object(
  {
    since: Type.Optional(RevisionSchema),
    role: Type.Optional(RoleSchema),
    id: Type.Optional(VmIdSchema),
  },
  { additionalProperties: false },
);
