import { BadRequestError } from './errors.js';

/**
 * Reads an If-Match header as the revision it names. Our ETags are the quoted revision
 * ("12"); weak and unquoted forms are accepted because proxies and hand-written curls
 * produce them. "*" only asks that the VM exist, which every write checks anyway.
 */
export function parseIfMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (value === '*') return undefined;
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(value);
  if (!match) {
    throw new BadRequestError(`If-Match must be one ETag as this server sends it, such as "12" (got ${JSON.stringify(value)})`);
  }
  return Number(match[1]);
}

export const etag = (revision: number) => `"${revision}"`;
