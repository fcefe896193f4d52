import { defineAction, defineService, TaskFailure } from 'taskport';

/** How many URLs are fetched at once. */
const PARALLEL_FETCHES = 4;

export interface LinkCheck {
  url: string;
  ok: boolean;
  status: number | null;
  ms: number;
  error?: string;
}

export default defineService({
  slug: 'web',
  name: 'Web',
  description: 'Work on web pages.',
  actions: [
    defineAction({
      slug: 'check-links',
      name: 'Check links',
      description: 'Fetches every URL (GET, following redirects) and reports its status and time.',
      execution: ['ASYNCHRONOUS'],
      timeoutSeconds: 300,
      maxAttempts: 2,
      parameters: [
        { slug: 'urls', name: 'URLs', type: 'LIST', description: 'http(s) URLs to check' },
        {
          slug: 'timeoutMs',
          name: 'Time limit per URL (ms)',
          type: 'INTEGER',
          optional: true,
          default: 5000,
          min: 100,
          max: 60_000,
        },
      ],
      handler: async ({ params, signal, log, progress }) => {
        const urls = params.urls.map((text) => {
          const url = URL.canParse(text) ? new URL(text) : null;
          if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
            // Another attempt would fail the same way.
            throw new TaskFailure('INVALID_URL', `not an http(s) URL: ${text}`, { retryable: false });
          }
          return url;
        });
        const checks: LinkCheck[] = new Array(urls.length);
        let next = 0;
        let done = 0;
        const fetchNext = async (): Promise<void> => {
          while (next < urls.length && !signal.aborted) {
            const index = next++;
            const check = await checkLink(urls[index]!, AbortSignal.any([signal, AbortSignal.timeout(params.timeoutMs)]));
            checks[index] = check;
            done += 1;
            log(check.ok ? 'INFO' : 'WARN', `${check.status ?? check.error} ${check.url} (${check.ms} ms)`);
            progress(done / urls.length);
          }
        };
        await Promise.all(Array.from({ length: PARALLEL_FETCHES }, fetchNext));
        // Cancelled or out of time: the attempt ends as the server decided, not with a report.
        signal.throwIfAborted();
        return { checked: checks.length, broken: checks.filter((check) => !check.ok).length, links: checks };
      },
    }),
  ],
});

async function checkLink(url: URL, signal: AbortSignal): Promise<LinkCheck> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, { signal, redirect: 'follow' });
    // Only the status matters: let the body go without reading it.
    await response.body?.cancel();
    return { url: url.href, ok: response.ok, status: response.status, ms: elapsed() };
  } catch (error) {
    const reason = signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError' ? 'timed out' : String(error);
    return { url: url.href, ok: false, status: null, ms: elapsed(), error: reason };
  }
}
