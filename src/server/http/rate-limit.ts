import type { RateLimitPluginOptions } from '@fastify/rate-limit';
import { RegistryError } from '../../domain/errors.js';
import { callerKey } from './caller-key.js';

/** Per-caller request budget for /registry, answered 429 with Retry-After when spent. */
export function rateLimitOptions(perMinute: number): RateLimitPluginOptions {
  return {
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: callerKey,
    errorResponseBuilder: (request, context) =>
      new RegistryError(
        429,
        `${callerKey(request)} sent more than ${context.max} requests in a minute (REGISTRY_RATE_LIMIT); retry in ${context.after}`,
      ),
  };
}
