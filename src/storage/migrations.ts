import { readMigrationFiles } from 'drizzle-orm/migrator';

const latestShipped = new Map<string, number[]>();

/**
 * How many of the migrations in `folder` come after `lastAppliedAt` (the `created_at` drizzle
 * records for the newest migration it applied; null for none). drizzle applies in that order,
 * so this is what a migration run would still do.
 */
export function migrationsAfter(folder: string, lastAppliedAt: number | null): number {
  let shipped = latestShipped.get(folder);
  if (!shipped) {
    shipped = readMigrationFiles({ migrationsFolder: folder }).map((migration) => migration.folderMillis);
    latestShipped.set(folder, shipped);
  }
  return shipped.filter((when) => lastAppliedAt === null || when > lastAppliedAt).length;
}
