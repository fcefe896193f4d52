import type Database from 'better-sqlite3';

/**
 * A family's statements, prepared once per connection and kept with it: the statements of a
 * database are its own, and a family's functions find them from the connection they are given.
 */
export function preparedOnce<Statements>(
  prepare: (sqlite: Database.Database) => Statements,
): (sqlite: Database.Database) => Statements {
  const prepared = new WeakMap<Database.Database, Statements>();
  return (sqlite) => {
    let statements = prepared.get(sqlite);
    if (statements === undefined) {
      statements = prepare(sqlite);
      prepared.set(sqlite, statements);
    }
    return statements;
  };
}
