import type Database from 'better-sqlite3';

/**
 * A prepared statement of the queue. An interface rather than an alias, so that the families'
 * emitted declarations name it instead of the driver's namespace, which they cannot reach.
 */
export interface Statement extends Database.Statement {}

/**
 * A family's statements, prepared once per connection and kept with it: the statements of a
 * database are its own, and a family's functions find them from the connection they are given.
 */
export function preparedOnce<Names extends string>(
  prepare: (sqlite: Database.Database) => Record<Names, Statement>,
): (sqlite: Database.Database) => Record<Names, Statement> {
  const prepared = new WeakMap<Database.Database, Record<Names, Statement>>();
  return (sqlite) => {
    let statements = prepared.get(sqlite);
    if (statements === undefined) {
      statements = prepare(sqlite);
      prepared.set(sqlite, statements);
    }
    return statements;
  };
}
