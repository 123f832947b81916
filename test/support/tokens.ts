import { writeFileSync } from 'node:fs';
import { sha256Hex, type Scope } from '../../src/server/http/tokens.js';

/** A token a test presents: its name in the tokens file, its secret, and what it may do. */
export type TestToken = [name: string, secret: string, scopes: readonly Scope[]];

/** Writes a REGISTRY_TOKENS_FILE holding these tokens (as the server reads it: SHA-256 digests, never secrets). */
export function writeTokensFile(path: string, tokens: TestToken[]): string {
  writeFileSync(path, JSON.stringify({ tokens: tokens.map(([name, secret, scopes]) => ({ name, sha256: sha256Hex(secret), scopes })) }));
  return path;
}
