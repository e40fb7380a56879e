// HTML character-reference decoding, following Python's html.unescape (which CLIP's
// tokenizer applies twice): numeric references with the HTML5 fix-ups for invalid code
// points, and all 2,231 HTML5 named references (tables/html5_entities.ts, generated from
// Python's html.entities.html5). An unknown name is left as written, as Python does.
import { HTML5_ENTITIES } from './tables/html5_entities.js';

/** HTML5's replacements for the C1 range and NUL/CR (Python's _invalid_charrefs). */
const INVALID_CHARREFS: Record<number, string> = {
  0x00: '\ufffd', 0x0d: '\r', 0x80: '\u20ac', 0x81: '\x81', 0x82: '\u201a', 0x83: '\u0192',
  0x84: '\u201e', 0x85: '\u2026', 0x86: '\u2020', 0x87: '\u2021', 0x88: '\u02c6', 0x89: '\u2030',
  0x8a: '\u0160', 0x8b: '\u2039', 0x8c: '\u0152', 0x8d: '\x8d', 0x8e: '\u017d', 0x8f: '\x8f',
  0x90: '\x90', 0x91: '\u2018', 0x92: '\u2019', 0x93: '\u201c', 0x94: '\u201d', 0x95: '\u2022',
  0x96: '\u2013', 0x97: '\u2014', 0x98: '\u02dc', 0x99: '\u2122', 0x9a: '\u0161', 0x9b: '\u203a',
  0x9c: '\u0153', 0x9d: '\x9d', 0x9e: '\u017e', 0x9f: '\u0178',
};

/** Code points HTML5 drops (Python's _invalid_codepoints). */
function isInvalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

function decodeNumeric(digits: string, hex: boolean): string {
  const n = parseInt(digits, hex ? 16 : 10);
  const invalid = INVALID_CHARREFS[n];
  if (invalid !== undefined) return invalid;
  if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff || !Number.isFinite(n)) return '\ufffd';
  if (isInvalidCodepoint(n)) return '';
  return String.fromCodePoint(n);
}

// Python's pattern: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;
const LONGEST_NAME = Object.keys(HTML5_ENTITIES).reduce((m, k) => Math.max(m, k.length), 0);

function replaceCharref(match: string, body: string): string {
  if (body[0] === '#') {
    const hex = body[1] === 'x' || body[1] === 'X';
    const digits = body.slice(hex ? 2 : 1).replace(/;$/, '');
    return decodeNumeric(digits, hex);
  }
  if (Object.hasOwn(HTML5_ENTITIES, body)) return HTML5_ENTITIES[body];
  // The longest name that is a prefix, the rest kept (Python: "&ampx" → "&x"); only the
  // names HTML5 accepts without ';' can match, since the prefix holds no ';'.
  for (let len = Math.min(body.length - 1, LONGEST_NAME); len > 1; len--) {
    const name = body.slice(0, len);
    if (Object.hasOwn(HTML5_ENTITIES, name)) return HTML5_ENTITIES[name] + body.slice(len);
  }
  return match;
}

/** Python's html.unescape. Strings without '&' come back unchanged at once. */
export function htmlUnescape(text: string): string {
  if (text.indexOf('&') < 0) return text;
  return text.replace(CHARREF, replaceCharref);
}

/** Whether Python's html.entities.html5 knows `name` (as written, e.g. 'amp;' or 'amp'). */
export function isHtml5EntityName(name: string): boolean {
  return Object.hasOwn(HTML5_ENTITIES, name);
}
