/** fetch options sending `body` as JSON with `method`, plus any headers (If-Match, Authorization). */
export const json = (method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  ...(body !== undefined && { body: JSON.stringify(body) }),
  headers: { 'content-type': 'application/json', ...headers },
});
