import pg from 'pg';
import {
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RateLimitWindow, RateLimitWindows } from '../domain/rate-limits.js';
import { isPostgresUrl } from '../storage/location.js';

export type RateLimitVerdict = { admitted: true } | { admitted: false; retryAfterSeconds: number };

export const ADMITTED: RateLimitVerdict = Object.freeze({ admitted: true });

/**
 * Counts operations per subject (`submit:12`, `execute:<token hash>`) in fixed windows. On SQLite
 * the counts live in this process (it is the only one); on PostgreSQL in an UNLOGGED table that
 * every process of the database shares, so that several processes together admit a limit once.
 */
export interface RateLimiter {
  /** One point of every window, shortest first; the first window that refuses decides. */
  consume(subject: string, windows: RateLimitWindows): Promise<RateLimitVerdict>;
  close(): Promise<void>;
}

export const RATE_LIMITER_STORE = Object.freeze({
  /** The PostgreSQL table of the counters: one row per subject and window length. */
  table: 'rate_limiter_windows',
  /** Connections of this process's own pool for the counters, beside the storage's. */
  poolSize: 2,
  /** How often this process deletes expired counter rows. */
  sweepMs: 60_000,
  /**
   * A process takes this share of a window's points from the shared counter at once and hands
   * them out itself: most operations then cost no statement. What a process took and did not use
   * is lost to the others, so N processes admit at least (1 - N × share) of a limit, never more.
   */
  leaseShare: 0.02,
  /**
   * Distinct window lengths kept as limiter objects; the least recently created goes first (on
   * SQLite with its counts: a server whose keys use more lengths than this counts some afresh).
   */
  limiters: 256,
  /** Leases kept in memory; past it the expired ones go, and then all of them. */
  leases: 100_000,
});

/**
 * Points taken from the counter at once; 1 for limits under 100. With one process (SQLite) every
 * lease is its own, so the count stays exact.
 */
function leaseSize(points: number): number {
  return Math.max(1, Math.floor(points * RATE_LIMITER_STORE.leaseShare));
}

/** Points of one window that this process has taken from the counter and not yet handed out. */
interface Lease {
  remaining: number;
  /** When the counter's window ends: the lease is worth nothing after it. */
  expiresAt: number;
  /** The counter had no more points for this window: refuse until it ends. */
  exhausted: boolean;
  /** A refill in flight: other operations of the subject wait for it instead of sending their own. */
  refill: Promise<void> | null;
}

/**
 * One counter per subject and window length, whatever the points: a key whose limit changes keeps
 * its count, and the points are compared here (see refill), so the counter itself never refuses.
 */
type LimiterFactory = (perSeconds: number) => RateLimiterAbstract;
const COUNTER_CEILING = 2 ** 31 - 1;

class WindowedLimiter implements RateLimiter {
  readonly #limiters = new Map<number, RateLimiterAbstract>();
  readonly #leases = new Map<string, Lease>();

  constructor(
    readonly createLimiter: LimiterFactory,
    readonly closeStore: () => Promise<void>,
  ) {}

  async consume(subject: string, windows: RateLimitWindows): Promise<RateLimitVerdict> {
    for (const window of windows) {
      const verdict = await this.#take(subject, window);
      if (!verdict.admitted) return verdict;
    }
    return ADMITTED;
  }

  close(): Promise<void> {
    this.#leases.clear();
    return this.closeStore();
  }

  #limiterFor(perSeconds: number): RateLimiterAbstract {
    let limiter = this.#limiters.get(perSeconds);
    if (!limiter) {
      if (this.#limiters.size >= RATE_LIMITER_STORE.limiters) {
        this.#limiters.delete(this.#limiters.keys().next().value!);
      }
      limiter = this.createLimiter(perSeconds);
      this.#limiters.set(perSeconds, limiter);
    }
    return limiter;
  }

  async #take(subject: string, window: RateLimitWindow): Promise<RateLimitVerdict> {
    const name = `${window.perSeconds}:${window.points}:${subject}`;
    for (;;) {
      const now = Date.now();
      let lease = this.#leases.get(name);
      if (lease && lease.expiresAt <= now && lease.refill === null) {
        this.#leases.delete(name);
        lease = undefined;
      }
      if (lease?.refill) {
        await lease.refill;
        continue;
      }
      if (lease && lease.remaining > 0) {
        lease.remaining -= 1;
        return ADMITTED;
      }
      if (lease?.exhausted) {
        return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil((lease.expiresAt - now) / 1000)) };
      }
      const fresh: Lease = lease ?? { remaining: 0, expiresAt: 0, exhausted: false, refill: null };
      if (!lease) this.#remember(name, fresh);
      fresh.refill = this.#refill(fresh, subject, window).finally(() => (fresh.refill = null));
    }
  }

  /** Takes a lease of points from the counter; what it grants is what was left of the window. */
  async #refill(lease: Lease, subject: string, window: RateLimitWindow): Promise<void> {
    const size = leaseSize(window.points);
    let result: RateLimiterRes;
    try {
      result = await this.#limiterFor(window.perSeconds).consume(subject, size);
    } catch (refused) {
      // The store's own failures go to the insurance limiter; anything else is a bug to surface.
      if (!(refused instanceof RateLimiterRes)) throw refused;
      result = refused;
    }
    const before = result.consumedPoints - size;
    const granted = Math.min(size, Math.max(0, window.points - before));
    lease.remaining = granted;
    lease.exhausted = before + size >= window.points;
    lease.expiresAt = Date.now() + Math.max(result.msBeforeNext, 1);
  }

  #remember(name: string, lease: Lease): void {
    if (this.#leases.size >= RATE_LIMITER_STORE.leases) {
      const now = Date.now();
      for (const [key, held] of this.#leases) if (held.expiresAt <= now && held.refill === null) this.#leases.delete(key);
      if (this.#leases.size >= RATE_LIMITER_STORE.leases) {
        // Forgetting leases admits no more than the limit: the counter still holds what they took.
        for (const [key, held] of this.#leases) if (held.refill === null) this.#leases.delete(key);
      }
    }
    this.#leases.set(name, lease);
  }
}

const keyPrefix = (perSeconds: number) => `w${perSeconds}`;

function memoryLimiter(perSeconds: number): RateLimiterMemory {
  return new RateLimiterMemory({ points: COUNTER_CEILING, duration: perSeconds, keyPrefix: keyPrefix(perSeconds) });
}

/**
 * Creates the counters' table once, however many processes start at once: PostgreSQL's CREATE
 * TABLE IF NOT EXISTS is not safe against a concurrent one, so the creators take turns.
 */
async function createCounterTable(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('taskport:${RATE_LIMITER_STORE.table}'))`);
    // UNLOGGED: counters of a few seconds need no crash recovery, and skip the write-ahead log.
    await client.query(
      `CREATE UNLOGGED TABLE IF NOT EXISTS "${RATE_LIMITER_STORE.table}" (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`,
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

async function postgresLimiter(
  url: string,
  warn: (message: string, error: unknown) => void,
): Promise<WindowedLimiter> {
  const pool = new pg.Pool({ connectionString: url, max: RATE_LIMITER_STORE.poolSize, application_name: 'taskport-rate-limits' });
  // An idle connection that the server drops would otherwise end the process.
  pool.on('error', (error) => warn('a rate-limit counter connection failed', error));
  try {
    await createCounterTable(pool);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const sweep = setInterval(() => {
    pool.query(`DELETE FROM "${RATE_LIMITER_STORE.table}" WHERE expire < $1`, [Date.now()]).catch((error: unknown) =>
      warn('deleting expired rate-limit counters failed', error),
    );
  }, RATE_LIMITER_STORE.sweepMs);
  sweep.unref();
  const create: LimiterFactory = (perSeconds) =>
    new RateLimiterPostgres({
      storeClient: pool,
      storeType: 'pool',
      tableName: RATE_LIMITER_STORE.table,
      tableCreated: true,
      // This process sweeps once for all limiters.
      clearExpiredByTimeout: false,
      points: COUNTER_CEILING,
      duration: perSeconds,
      keyPrefix: keyPrefix(perSeconds),
      // While PostgreSQL cannot be reached, each process limits on its own rather than failing requests.
      insuranceLimiter: memoryLimiter(perSeconds),
    });
  return new WindowedLimiter(create, async () => {
    clearInterval(sweep);
    await pool.end();
  });
}

/** The limiter for the database: in memory for a SQLite file, shared through PostgreSQL for a postgres:// URL. */
export async function createRateLimiter(
  database: string,
  options: { warn: (message: string, error: unknown) => void },
): Promise<RateLimiter> {
  if (isPostgresUrl(database)) return postgresLimiter(database, options.warn);
  return new WindowedLimiter(memoryLimiter, async () => {});
}
