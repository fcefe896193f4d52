import { createHash } from 'node:crypto';

/** Tokens and keys are stored and looked up by their SHA-256 alone, never as given. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Tokens whose hash (or refusal) a process remembers: any client can send new ones, so it is bounded. */
export const REMEMBERED_TOKENS = 10_000;

/**
 * Clients send the same token with every request: its hash is remembered rather than computed
 * again, for up to `capacity` tokens, which are then forgotten together (any client can send new ones).
 */
export class TokenHashes {
  readonly #hashes = new Map<string, string>();

  constructor(readonly capacity = REMEMBERED_TOKENS) {}

  of(token: string): string {
    let hash = this.#hashes.get(token);
    if (hash === undefined) {
      if (this.#hashes.size >= this.capacity) this.#hashes.clear();
      hash = hashToken(token);
      this.#hashes.set(token, hash);
    }
    return hash;
  }
}
