// The text clean-up CLIP's tokenizer does before splitting words.
//
// OpenAI's tokenizer runs ftfy.fix_text, then html.unescape twice, then collapses whitespace.
// ftfy is a Python library; `fixTextLite` does the parts of its default fix_text that are
// plain character maps: NFC normalisation, curly quotes to straight, Latin ligatures split,
// full-width ASCII to ASCII, C1 controls read as Windows-1252, terminal escapes and control
// characters removed, line breaks unified. It does NOT repair mojibake (UTF-8 read as
// Latin-1, "cafÃ©"), which ftfy's fix_encoding does; such captions tokenize differently.

import { htmlUnescape } from './html_unescape.js';

/** Characters Python's str.isspace() accepts, i.e. what `\s` matches in Python's re. */
export const PY_WHITESPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'g');
const ONLY_PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'Ŀ': 'L·', 'ŀ': 'l·', 'ŉ': "ʼn", 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ',
  'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

const CP1252_C1 = '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ';

// ftfy's CONTROL_CHARS (tab, newline, form feed and carriage return are kept).
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]|\u{1d173}|\u{1d174}|\u{1d175}|\u{1d176}|\u{1d177}|\u{1d178}|\u{1d179}|\u{1d17a}|[\u{e0000}-\u{e007f}]/gu;
const TERMINAL_ESCAPE_RE = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The character-map parts of ftfy.fix_text (see the file comment for what is left out). */
export function fixTextLite(text: string): string {
  if (ONLY_PRINTABLE_ASCII.test(text)) return text;
  let s = text.replace(TERMINAL_ESCAPE_RE, '');
  s = s.replace(/[\x80-\x9f]/g, (c) => CP1252_C1[c.charCodeAt(0) - 0x80]);
  s = s.replace(LIGATURE_RE, (c) => LIGATURES[c]);
  s = s.replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/\u3000/g, ' ');
  s = s.replace(/[\u2018\u2019\u201a\u201b]/g, "'").replace(/[\u201c\u201d\u201e\u201f]/g, '"');
  s = s.replace(/\r\n|[\r\u2028\u2029\x85]/g, '\n');
  s = s.replace(CONTROL_RE, '');
  return s.normalize('NFC');
}

/** Python's re.sub(r'\s+', ' ', text).strip(). */
export function whitespaceClean(text: string): string {
  const s = text.replace(WHITESPACE_RUN, ' ');
  const start = s.charCodeAt(0) === 32 ? 1 : 0;
  const end = s.length > start && s.charCodeAt(s.length - 1) === 32 ? s.length - 1 : s.length;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** What CLIP's tokenizer does to a caption before splitting: fix, unescape twice, clean, lower. */
export function clipCleanText(text: string): string {
  // Fast path, same result: printable ASCII without '&' needs no fixing or unescaping, and
  // its only whitespace is ' '.
  if (ONLY_PRINTABLE_ASCII.test(text) && text.indexOf('&') < 0) {
    let s = text.indexOf('  ') >= 0 ? text.replace(/ {2,}/g, ' ') : text;
    if (s.charCodeAt(0) === 32 || s.charCodeAt(s.length - 1) === 32) s = s.trim();
    return s.toLowerCase();
  }
  let s = fixTextLite(text);
  s = htmlUnescape(htmlUnescape(s));
  // Python's basic_clean strips after unescaping; whitespaceClean strips too.
  return whitespaceClean(s).toLowerCase();
}
