export const number = new Intl.NumberFormat('en');

/** "4 s", "3 min 20 s", "2 h 5 min", "3 d 4 h": the two largest units. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let rest = seconds;
  for (const [name, size] of units) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || (parts.length === 0 && size === 1)) parts.push(`${amount} ${name}`);
    if (parts.length === 2) break;
    if (parts.length === 1 && amount === 0) break;
  }
  return parts.join(' ');
}

/** Below a second in milliseconds, then as formatAge. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : formatAge(ms);
}

const dateTime = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

/** A DateTime of the API in the reader's own time zone. */
export function formatDate(iso: string): string {
  return dateTime.format(new Date(iso));
}
