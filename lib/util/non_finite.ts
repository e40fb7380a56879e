// Non-finite values (NaN, ±Inf) in what is read — weights, pixels, features — make every result
// built on them meaningless. They are not fatal (a user may be inspecting a diverged run), but never
// silent: they are counted and reported as a process warning that names the file.

/** How many values are not finite, and the index of the first. */
export function countNonFinite(values: ArrayLike<number>): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) {
      // NaN - NaN and Inf - Inf are NaN: one test catches both.
      if (first < 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** Emits a ClipscaleWarning (stderr by default; process 'warning' listeners see it) when `values` holds non-finite numbers. */
export function warnIfNonFinite(values: ArrayLike<number>, what: string): number {
  const { count, first } = countNonFinite(values);
  if (count > 0) process.emitWarning(`${what}: ${count} of ${values.length} values are not finite (NaN or ±Inf; first at index ${first})`, 'ClipscaleWarning');
  return count;
}
