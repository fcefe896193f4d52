/** The href of a task's page (under the router's base); a global id may hold "/" or "=". */
export function taskHref(id: string): string {
  return `/tasks/${encodeURIComponent(id)}`;
}
