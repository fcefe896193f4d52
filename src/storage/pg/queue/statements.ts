/** A named statement: pg prepares it once per connection, then only binds its values. */
export const statement = (name: string, text: string) => (values: unknown[]) => ({ name: `queue.${name}`, text, values });
