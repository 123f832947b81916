import { Type } from '@sinclair/typebox';

/** Every 4xx and 5xx answer: one sentence naming the problem. */
export const ErrorSchema = Type.Object({ error: Type.String() });
