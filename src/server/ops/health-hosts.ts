import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface HealthHostSpec {
  entries: string[];
  ownAddresses: string[];
}

/**
 * Which addresses the health checker may connect to (REGISTRY_HEALTH_HOSTS). Whoever can
 * register a VM chooses its address, so without this rule the registry would probe any
 * machine it can reach on their behalf: its own admin ports, cloud metadata, the database.
 * The rule judges the IP actually connected to, after DNS, so a name resolving to 127.0.0.1
 * is as refused as 127.0.0.1 itself.
 */
export class HealthHostRule {
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly allowed = new BlockList();
  private readonly forbidden = new BlockList();
  /** Entries were given: only what they name is allowed. */
  private readonly restricted: boolean;
  /** What it was built from: the checker's thread builds its own copy (a BlockList cannot be sent to it). */
  readonly spec: HealthHostSpec;

  /**
   * `entries`: host names, `*.suffix` wildcards, IPs and CIDRs. `ownAddresses`: where this
   * registry listens. Loopback, link-local and those are refused unless an IP or CIDR entry
   * names them; a host name entry never unlocks them, since a name can be made to resolve anywhere.
   */
  constructor(entries: readonly string[], ownAddresses: readonly string[]) {
    this.spec = { entries: [...entries], ownAddresses: [...ownAddresses] };
    this.restricted = entries.length > 0;
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
      if (cidr && isIP(cidr[1])) {
        const family = isIP(cidr[1]) === 4 ? 'ipv4' : 'ipv6';
        const prefix = Number(cidr[2]);
        if (prefix > (family === 'ipv4' ? 32 : 128)) throw new Error(`"${raw}" has a prefix longer than its address`);
        this.allowed.addSubnet(cidr[1], prefix, family);
      } else if (isIP(entry)) {
        this.allowed.addAddress(entry, isIP(entry) === 4 ? 'ipv4' : 'ipv6');
      } else if (/^\*\.[a-z0-9.-]+$/.test(entry)) {
        this.suffixes.push(entry.slice(1));
      } else if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(entry)) {
        this.names.add(entry);
      } else {
        throw new Error(`"${raw}" is not a host name, *.suffix, IP or CIDR`);
      }
    }
    this.forbidden.addSubnet('127.0.0.0', 8, 'ipv4');
    this.forbidden.addAddress('::1', 'ipv6');
    this.forbidden.addSubnet('169.254.0.0', 16, 'ipv4');
    this.forbidden.addSubnet('fe80::', 10, 'ipv6');
    this.forbidden.addAddress('0.0.0.0', 'ipv4');
    this.forbidden.addAddress('::', 'ipv6');
    for (const own of ownAddresses) {
      if (isIP(own)) this.forbidden.addAddress(own, isIP(own) === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Undefined when `ip` (reached by the name `host`) may be connected to; otherwise why not. */
  refusal(host: string, ip: string): string | undefined {
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    const named = this.allowed.check(ip, family);
    if (this.forbidden.check(ip, family) && !named) {
      return `${ip} is loopback, link-local or this registry's own address; name it in REGISTRY_HEALTH_HOSTS to allow it`;
    }
    if (!this.restricted || named) return undefined;
    const name = host.toLowerCase();
    if (this.names.has(name) || this.suffixes.some((suffix) => name.endsWith(suffix))) return undefined;
    return `${host === ip ? ip : `${host} (${ip})`} is not allowed by REGISTRY_HEALTH_HOSTS`;
  }
}

/** The addresses a registry listening on `host` answers at: every interface's for a wildcard. */
export function ownAddresses(host: string): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [host];
  return Object.values(networkInterfaces())
    .flat()
    .map((info) => info?.address)
    .filter((address): address is string => address !== undefined);
}
