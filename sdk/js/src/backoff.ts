/** Which answers are retried, and when. */

export type Outcome =
  | { kind: "done" }
  | { kind: "retry"; retryAfterMs: number | null }
  | { kind: "refused" };

/** A status's fate: 2xx done; 429 and 5xx retried (429 honouring Retry-After); any other
 * status refused for good (a 4xx will not change by sending the same request again). */
export function classify(status: number, retryAfter: string | null, nowMs: number): Outcome {
  if (status >= 200 && status < 300) return { kind: "done" };
  if (status === 429) return { kind: "retry", retryAfterMs: parseRetryAfter(retryAfter, nowMs) };
  if (status >= 500 && status < 600) return { kind: "retry", retryAfterMs: null };
  return { kind: "refused" };
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value == null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

/** Exponential backoff with jitter: attempt 1 waits about `base`, each next one twice as long,
 * never more than `max`; the wait is drawn from [half, full] of that so clients spread out. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** The wait before the next attempt: the backoff, or the server's Retry-After when longer
 * (capped at one hour so a wrong header cannot park the queue for days). */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | null,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const delay = backoffDelay(attempt, baseMs, maxMs, random);
  if (retryAfterMs == null) return delay;
  return Math.max(delay, Math.min(retryAfterMs, 3_600_000));
}
