import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Mode = 'ok' | 'fail' | 'hang' | 'drip' | 'redirect';

/** A self-signed certificate for 127.0.0.1 and localhost, valid until 2126, and its key. */
export const TLS_CERT = new URL('../../../test/fixtures/tls/cert.pem', import.meta.url);
const TLS_KEY = new URL('../../../test/fixtures/tls/key.pem', import.meta.url);

/** A checker that settles within a second: a verdict every 300 ms, critical after two failures. */
export const FAST_CHECKS = {
  REGISTRY_HEALTH_CHECKS: 'on',
  REGISTRY_HEALTH_INTERVAL: '300ms',
  REGISTRY_HEALTH_TIMEOUT: '200ms',
  REGISTRY_HEALTH_FAILURES: '2',
} as const;

/**
 * A service whose health a test toggles, counting the connections it was sent. Every path
 * answers as `mode` says, unless `paths` gives that path a mode of its own, so that one target
 * can serve a passing and a failing VM at once.
 */
export class Target {
  mode: Mode = 'ok';
  readonly paths = new Map<string, Mode>();
  connections = 0;
  requests: Array<Record<string, string | string[] | undefined>> = [];
  private readonly server: Server;

  private constructor(tls: boolean) {
    const answer: RequestListener = (request, response) => {
      this.requests.push(request.headers);
      const mode = this.paths.get(request.url ?? '') ?? this.mode;
      if (mode === 'ok') response.end('ok');
      else if (mode === 'fail') response.writeHead(500).end('broken');
      else if (mode === 'redirect') response.writeHead(302, { location: '/elsewhere' }).end();
      else if (mode === 'drip') {
        response.writeHead(200);
        const drip = setInterval(() => response.write('.'), 20);
        response.on('close', () => clearInterval(drip));
      }
      // hang: never answers
    };
    this.server = tls ? createTlsServer({ cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) }, answer) : createServer(answer);
    this.server.on(tls ? 'secureConnection' : 'connection', () => this.connections++);
  }

  /** `tls`: over HTTPS, with the certificate in TLS_CERT. */
  static async start(options: { tls?: boolean } = {}): Promise<Target> {
    const target = new Target(options.tls ?? false);
    await new Promise<void>((resolve) => target.server.listen(0, '127.0.0.1', resolve));
    return target;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
