import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ConfigError } from '../config.js';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Who is calling: the name of the token presented and what it may do. */
export interface Principal {
  name: string;
  scopes: ReadonlySet<Scope>;
}

/** The name VERS_AUTH_TOKEN's full-rights principal goes by; a tokens file may not reuse it. */
export const AUTH_TOKEN_NAME = 'VERS_AUTH_TOKEN';

const TokenEntrySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' }),
    sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
    scopes: Type.Array(Type.Union(SCOPES.map((scope) => Type.Literal(scope))), { minItems: 1, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type TokenEntry = Static<typeof TokenEntrySchema>;

export const TokensFileSchema = Type.Object({ tokens: Type.Array(TokenEntrySchema) }, { additionalProperties: false });
const checkTokensFile = TypeCompiler.Compile(TokensFileSchema);

export const sha256Hex = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** A tokens file that cannot be used; the message names the file and the entry at fault. */
export class TokensFileError extends ConfigError {}

/** Reads and checks REGISTRY_TOKENS_FILE: `{"tokens": [{"name", "sha256", "scopes"}]}`. */
export function readTokensFile(path: string): TokenEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TokensFileError(`cannot read the tokens file ${path}: ${(error as Error).message}`);
  }
  const problem = checkTokensFile.Errors(parsed).First();
  if (problem) {
    throw new TokensFileError(`the tokens file ${path} is invalid at ${problem.path || '/'}: ${problem.message}`);
  }
  const { tokens } = parsed as Static<typeof TokensFileSchema>;
  const names = new Set<string>();
  for (const token of tokens) {
    if (token.name === AUTH_TOKEN_NAME) throw new TokensFileError(`the tokens file ${path} may not name a token ${AUTH_TOKEN_NAME}`);
    if (names.has(token.name)) throw new TokensFileError(`the tokens file ${path} names the token "${token.name}" twice`);
    names.add(token.name);
  }
  return tokens;
}

interface KnownToken {
  digest: Buffer;
  principal: Principal;
}

/**
 * The tokens this server accepts. Only SHA-256 digests are kept; a presented secret is
 * hashed and compared with every digest in constant time, so neither the secret nor which
 * token it nearly matched leaks through timing.
 */
export class TokenRegistry {
  private known: KnownToken[] = [];

  constructor(
    private readonly authToken: string | undefined,
    entries: TokenEntry[] = [],
  ) {
    this.replace(entries);
  }

  /** False when no token is configured at all: the registry is open. */
  get enabled(): boolean {
    return this.known.length > 0;
  }

  get names(): string[] {
    return this.known.map((token) => token.principal.name);
  }

  /** Swaps in a new set of file tokens (SIGHUP); VERS_AUTH_TOKEN stays. */
  replace(entries: TokenEntry[]): void {
    const known: KnownToken[] = entries.map((entry) => ({
      digest: Buffer.from(entry.sha256.toLowerCase(), 'hex'),
      principal: { name: entry.name, scopes: new Set(entry.scopes) },
    }));
    if (this.authToken) {
      known.push({
        digest: Buffer.from(sha256Hex(this.authToken), 'hex'),
        principal: { name: AUTH_TOKEN_NAME, scopes: new Set(SCOPES) },
      });
    }
    this.known = known;
  }

  identify(secret: string): Principal | undefined {
    const digest = Buffer.from(sha256Hex(secret), 'hex');
    let found: Principal | undefined;
    for (const token of this.known) {
      if (timingSafeEqual(digest, token.digest)) found = token.principal;
    }
    return found;
  }
}

/** admin may do everything; otherwise the scope itself is needed. */
export const allows = (principal: Principal, scope: Scope) => principal.scopes.has('admin') || principal.scopes.has(scope);
