// Shard-list patterns as webdataset writes them: `dir/{00000..00999}.tar` (zero-padded
// numeric ranges), `{a,b}` alternatives, several braces (all combinations), and several
// patterns joined by '::' (OpenCLIP's way to mix sources).

/** The most names a pattern may stand for: a billion names would take all memory to list. */
export const MAX_PATTERN_NAMES = 1_000_000;

/** How many names a pattern stands for, counted without expanding it (malformed braces count 1). */
export function countBraceNames(pattern: string): number {
  let total = 0;
  for (const part of pattern.split('::')) {
    let n = 1;
    for (const m of part.matchAll(/\{([^{}]*)\}/g)) {
      const range = /^(\d+)\.\.(\d+)$/.exec(m[1]);
      if (range) n *= Math.max(1, Number(range[2]) - Number(range[1]) + 1);
      else if (m[1].includes(',')) n *= m[1].split(',').length;
    }
    total += n;
  }
  return total;
}

/** Every path a pattern stands for, in order. */
export function expandBraces(pattern: string): string[] {
  const count = countBraceNames(pattern);
  if (count > MAX_PATTERN_NAMES) {
    throw new Error(`shard pattern '${pattern}' stands for ${count} names, more than the limit of ${MAX_PATTERN_NAMES}`);
  }
  return expandPattern(pattern);
}

function expandPattern(pattern: string): string[] {
  if (pattern.includes('::')) return pattern.split('::').flatMap((p) => expandPattern(p));
  const open = pattern.indexOf('{');
  if (open < 0) {
    if (pattern.includes('}')) throw new Error(`shard pattern '${pattern}': '}' without '{'`);
    return [pattern];
  }
  const close = pattern.indexOf('}', open);
  if (close < 0) throw new Error(`shard pattern '${pattern}': '{' without '}'`);
  const inner = pattern.slice(open + 1, close);
  const head = pattern.slice(0, open);
  const tails = expandPattern(pattern.slice(close + 1));
  let options: string[];
  const range = /^(\d+)\.\.(\d+)$/.exec(inner);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (b < a) throw new Error(`shard pattern '${pattern}': range {${inner}} runs backwards`);
    if (b - a > 10_000_000) throw new Error(`shard pattern '${pattern}': range {${inner}} is too long`);
    const width = range[1].length === range[2].length || range[1].startsWith('0') ? range[1].length : 0;
    options = [];
    for (let i = a; i <= b; i++) options.push(String(i).padStart(width, '0'));
  } else if (inner.includes(',')) {
    options = inner.split(',');
  } else {
    throw new Error(`shard pattern '${pattern}': '{${inner}}' is neither a range 'a..b' nor a list 'x,y'`);
  }
  return options.flatMap((o) => tails.map((t) => head + o + t));
}
