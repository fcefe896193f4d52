type Intersection<U> = (U extends unknown ? (value: U) => void : never) extends (value: infer I) => void ? I : never;

/**
 * One store whose methods are those of its families, each bound to its family: a dialect keeps
 * the statements of each family in a module of its own, and the store is the sum of them. Typed as
 * the intersection of the families, so that assigning it to the contract's interface checks that
 * together they implement every method, with its signature.
 */
export function composeStore<Families extends object[]>(...families: Families): Intersection<Families[number]> {
  const store: Record<string, unknown> = {};
  for (const family of families) {
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(family))) {
      const member = (family as Record<string, unknown>)[name];
      if (name === 'constructor' || typeof member !== 'function') continue;
      if (name in store) throw new Error(`two store families define ${name}`);
      store[name] = member.bind(family);
    }
  }
  return store as Intersection<Families[number]>;
}
