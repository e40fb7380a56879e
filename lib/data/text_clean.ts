// The text clean-up CLIP's tokenizer does before splitting words, as OpenCLIP 3.x does it:
// ftfy.fix_text (ftfy_fix.ts, a port of ftfy 6.3's defaults: HTML entities first, mojibake
// repair, then the character fixes), then Python's html.unescape twice, whitespace collapsed.

import { ftfyFixText } from './ftfy_fix.js';
import { htmlUnescape } from './html_unescape.js';

/** Characters Python's str.isspace() accepts, i.e. what `\s` matches in Python's re. */
export const PY_WHITESPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'g');
const ONLY_PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** ftfy.fix_text with its default configuration (see ftfy_fix.ts). */
export function fixText(text: string): string {
  return ftfyFixText(text);
}

/** @deprecated The old name of fixText (which now does all of ftfy.fix_text, mojibake repair included). */
export const fixTextLite = fixText;

/** Python's " ".join(text.split()): whitespace runs to one space, none at the ends. */
export function whitespaceClean(text: string): string {
  const s = text.replace(WHITESPACE_RUN, ' ');
  const start = s.charCodeAt(0) === 32 ? 1 : 0;
  const end = s.length > start && s.charCodeAt(s.length - 1) === 32 ? s.length - 1 : s.length;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** What OpenCLIP's tokenizer does to a caption before splitting: fix, unescape twice, clean, lower. */
export function clipCleanText(text: string): string {
  // Fast path, same result: printable ASCII without '&' needs no fixing or unescaping, and
  // its only whitespace is ' '.
  if (ONLY_PRINTABLE_ASCII.test(text) && text.indexOf('&') < 0) {
    let s = text.indexOf('  ') >= 0 ? text.replace(/ {2,}/g, ' ') : text;
    if (s.charCodeAt(0) === 32 || s.charCodeAt(s.length - 1) === 32) s = s.trim();
    return s.toLowerCase();
  }
  const s = htmlUnescape(htmlUnescape(fixText(text)));
  // Python's basic_clean strips after unescaping; whitespaceClean strips too.
  return whitespaceClean(s).toLowerCase();
}
