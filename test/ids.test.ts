import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import { decodeAnyId } from '../src/graphql/ids.js';

// decodeAnyId decodes base64 itself, for speed; it must accept and refuse exactly what Pothos'
// decodeGlobalID followed by a positive-integer check does.
function throughPothos(globalId: string): { typename: string; id: number } | null {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    return null;
  }
  if (!/^[1-9]\d*$/.test(decoded.id)) return null;
  const id = Number(decoded.id);
  return Number.isSafeInteger(id) ? { typename: decoded.typename, id } : null;
}

function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const random = seededRandom(7);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const base64 = (text: string | Uint8Array) => Buffer.from(text).toString('base64');

function candidates(): string[] {
  const typenames = ['Task', 'ApiKey', 'Cursor', '_x', 'a1', '1a', '', 'Tâsk', 'Task\u0000'];
  const numbers = ['1', '42', '9007199254740991', '9007199254740992', '0', '01', '-1', '1.5', '', '1:2', '١'];
  const ids: string[] = [];
  for (const typename of typenames) {
    for (const number of numbers) {
      ids.push(base64(`${typename}:${number}`), base64(`${typename}:${number}:`), base64(`${typename}::${number}`));
    }
  }
  for (let count = 0; count < 3000; count++) {
    const valid = encodeGlobalID(pick(['Task', 'Account', 'TaskResult']), Math.floor(random() * 1e9) + 1);
    const position = Math.floor(random() * valid.length);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ ';
    ids.push(valid, valid.slice(0, position), valid.slice(0, position) + pick([...alphabet]) + valid.slice(position + 1));
    ids.push(base64(Uint8Array.from({ length: Math.floor(random() * 16) }, () => Math.floor(random() * 256))));
  }
  return ids;
}

describe('decodeAnyId', () => {
  it('gives what Pothos decodeGlobalID gives, for valid, truncated, mutated and binary ids', () => {
    for (const id of candidates()) expect(decodeAnyId(id), id).toEqual(throughPothos(id));
  });
});
