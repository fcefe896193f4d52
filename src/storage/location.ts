/** TASKPORT_DB names a PostgreSQL database by URL; anything else is the path of a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}
