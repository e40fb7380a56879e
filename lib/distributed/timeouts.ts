// How long a rank waits before it decides another rank is gone. A rank that exits
// or crashes is noticed at once (its connection closes); these bound the wait for a
// rank that hangs or a machine that vanishes without closing its connections.

/** Default limit on one collective: CLIPSCALE_DIST_TIMEOUT_S overrides it. */
export const DEFAULT_COLLECTIVE_TIMEOUT_S = 300;
/** Default limit on meeting all ranks at start-up: CLIPSCALE_DIST_CONNECT_TIMEOUT_S overrides it. */
export const DEFAULT_CONNECT_TIMEOUT_S = 120;

function seconds(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`clipscale dist: ${name}='${raw}' must be a positive number of seconds`);
  return s;
}

export interface DistTimeouts {
  /** Milliseconds one collective may take. */
  collectiveMs: number;
  /** Milliseconds for all ranks to connect at start-up. */
  connectMs: number;
}

export function readDistTimeouts(env: Record<string, string | undefined> = process.env): DistTimeouts {
  return {
    collectiveMs: seconds(env, 'CLIPSCALE_DIST_TIMEOUT_S', DEFAULT_COLLECTIVE_TIMEOUT_S) * 1000,
    connectMs: seconds(env, 'CLIPSCALE_DIST_CONNECT_TIMEOUT_S', DEFAULT_CONNECT_TIMEOUT_S) * 1000,
  };
}

export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
