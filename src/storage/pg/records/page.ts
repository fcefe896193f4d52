import type { Page } from '../../../domain/types.js';

export function page<T extends { id: number }>(rows: T[], first: number): Page<T> {
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}
