import type { Vm } from '../domain/schemas/vm.js';
import type { Static } from '@sinclair/typebox';
import type { HealthSchema } from '../domain/schemas/health.js';

export const TOKEN_KEY = 'vm-registry.token';

/** The server refused the token, or wants one: the page asks for it. */
export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Health = Static<typeof HealthSchema>;

export interface Listing {
  vms: Vm[];
  revision: number;
  /** Server clock minus ours, from the Date header: relative times stay right on a skewed laptop. */
  clockOffsetMs: number;
}

/**
 * Requests to the registry with the bearer token. The token lives in sessionStorage, so it
 * lasts as long as the tab and travels only in the Authorization header, never in a URL.
 */
export class Api {
  private token = sessionStorage.getItem(TOKEN_KEY) ?? undefined;

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  setToken(token: string): void {
    this.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  }

  forgetToken(): void {
    this.token = undefined;
    sessionStorage.removeItem(TOKEN_KEY);
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    const response = await fetch(path, { ...init, headers, cache: 'no-store' });
    if (response.status === 401) throw new Unauthorized(await errorText(response));
    return response;
  }

  async json<T>(path: string, init?: RequestInit): Promise<{ body: T; response: Response }> {
    const response = await this.fetch(path, init);
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return { body: (await response.json()) as T, response };
  }

  async list(query = ''): Promise<Listing> {
    const { body, response } = await this.json<{ vms: Vm[]; revision: number }>(`/registry/vms${query}`);
    const date = Date.parse(response.headers.get('date') ?? '');
    return { ...body, clockOffsetMs: Number.isNaN(date) ? 0 : date - Date.now() };
  }

  async whoami(): Promise<{ name?: string; scopes: string[] }> {
    return (await this.json<{ name?: string; scopes: string[] }>('/registry/whoami')).body;
  }

  /** Whether this token may change the VM: a write token may change only the VMs it registered. */
  async mayChange(id: string): Promise<boolean> {
    return (await this.json<{ mayChange?: boolean }>(`/registry/whoami?vm=${encodeURIComponent(id)}`)).body.mayChange === true;
  }

  /** /health: public, and what the cluster view shows. */
  async health(): Promise<Health> {
    const response = await fetch('/health', { cache: 'no-store' });
    return (await response.json()) as Health;
  }

  async setStatus(id: string, status: 'running' | 'paused' | 'stopped'): Promise<void> {
    await this.json(`/registry/vms/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status }),
    });
  }

  async deregister(id: string): Promise<void> {
    await this.json(`/registry/vms/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }
}

async function errorText(response: Response): Promise<string> {
  const text = await response.text();
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    return text || `HTTP ${response.status}`;
  }
}
