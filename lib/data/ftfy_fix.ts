// ftfy.fix_text (ftfy 6.3, default configuration), which OpenCLIP's tokenizer runs on every
// caption before its two html.unescape calls. Ported step by step from ftfy's Python; its
// tables and its two detection regexes are generated data (tables/ftfy_tables.ts).
//
// Order per line segment, repeated until nothing changes (ftfy's fix_and_explain):
// unescape_html (only while no '<' has been seen) → fix_encoding (to a fixed point) →
// fix_c1_controls → fix_latin_ligatures → fix_character_width → uncurl_quotes →
// fix_line_breaks → fix_surrogates → remove_terminal_escapes → remove_control_chars → NFC.
//
// Known differences (counted by test/openclip-tokenizer-parity.test.ts): Unicode versions
// (Python 3.11's unicodedata is Unicode 14; Node's ICU is newer) change NFC and the letter
// classes for code points assigned since; everything else follows ftfy.
import { HTML5_ENTITIES } from './tables/html5_entities.js';
import {
  FTFY_BADNESS_PATTERN,
  FTFY_CHARMAP_ENCODINGS,
  FTFY_CODEC_TABLES,
  FTFY_UPPER_ENTITIES,
  FTFY_UTF8_DETECTOR_PATTERN,
  FTFY_WIDTH_MAP,
} from './tables/ftfy_tables.js';
import { htmlUnescape } from './html_unescape.js';

const BADNESS_RE = new RegExp(FTFY_BADNESS_PATTERN, 'u');
const UTF8_DETECTOR_RE = new RegExp(FTFY_UTF8_DETECTOR_PATTERN, 'gu');
const UTF8_DETECTOR_TEST = new RegExp(FTFY_UTF8_DETECTOR_PATTERN, 'u');

// ---- the simple character fixes -------------------------------------------------------

const HTML_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy.fixes.unescape_html: known entities (with their ';'), and numeric references. */
export function ftfyUnescapeHtml(text: string): string {
  if (text.indexOf('&') < 0) return text;
  return text.replace(HTML_ENTITY_RE, (m) => {
    const name = m.slice(1);
    if (Object.hasOwn(HTML5_ENTITIES, name) && name.endsWith(';')) return HTML5_ENTITIES[name];
    if (Object.hasOwn(FTFY_UPPER_ENTITIES, m)) return FTFY_UPPER_ENTITIES[m];
    if (m.startsWith('&#')) {
      const unescaped = htmlUnescape(m);
      return unescaped.includes(';') ? m : unescaped;
    }
    return m;
  });
}

const ANSI_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž',
  'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
// ftfy's CONTROL_CHARS: C0 controls but tab, LF, FF and CR; DEL; deprecated format characters
// U+206A–206F; the BOM; interlinear annotation U+FFF9–FFFC. (Not the emoji tag characters.)
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
const LONE_SURROGATE_RE = /[\ud800-\udfff]/u;

function fixLatinLigatures(s: string): string {
  return s.replace(LIGATURE_RE, (c) => LIGATURES[c]);
}
function fixCharacterWidth(s: string): string {
  return s.replace(WIDTH_RE, (c) => FTFY_WIDTH_MAP[c] ?? c);
}
function uncurlQuotes(s: string): string {
  return s.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}
function fixLineBreaks(s: string): string {
  return s.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\u0085]/g, '\n');
}
function fixSurrogates(s: string): string {
  // JavaScript strings already read a high+low pair as one character; lone halves become U+FFFD.
  return LONE_SURROGATE_RE.test(s) ? s.replace(/[\ud800-\udfff]/gu, '\ufffd') : s;
}

// ---- single-byte codecs, as byte strings (one char per byte, code 0..255) --------------

interface Codec {
  decode: readonly string[];
  encode: Map<string, number>;
}
const CODECS = new Map<string, Codec>();
for (const [name, table] of Object.entries(FTFY_CODEC_TABLES)) {
  const encode = new Map<string, number>();
  table.forEach((ch, b) => {
    if (ch !== '' && !encode.has(ch)) encode.set(ch, b);
  });
  CODECS.set(name, { decode: table, encode });
}
const codec = (name: string): Codec => CODECS.get(name)!;

/** chardata.possible_encoding: every character is one byte of `name`. */
function possibleEncoding(text: string, name: string): boolean {
  if (name === 'ascii') return /^[\x00-\x7f]*$/.test(text);
  const { encode } = codec(name);
  for (const ch of text) if (!encode.has(ch)) return false;
  return true;
}

function encodeBytes(text: string, name: string): string {
  const { encode } = codec(name);
  let out = '';
  for (const ch of text) out += String.fromCharCode(encode.get(ch)!);
  return out;
}

class DecodeError extends Error {}
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8Strict(bytes: string): string {
  try {
    return UTF8.decode(Buffer.from(bytes, 'latin1'));
  } catch {
    throw new DecodeError('utf-8');
  }
}

// ftfy's utf-8-variants: UTF-8 plus CESU-8 surrogate pairs and Java's two-byte NUL.
const SPECIAL_BYTES_RE = /\xc0\x80|\xed[\xa0-\xaf][\x80-\xbf]\xed[\xb0-\xbf][\x80-\xbf]/g;
function decodeUtf8Variants(bytes: string): string {
  let out = '';
  let last = 0;
  for (const m of bytes.matchAll(SPECIAL_BYTES_RE)) {
    out += decodeUtf8Strict(bytes.slice(last, m.index));
    if (m[0].length === 2) out += '\0';
    else {
      const b = Array.from(m[0], (c) => c.charCodeAt(0));
      out += String.fromCodePoint(((b[1] & 0x0f) << 16) + ((b[2] & 0x3f) << 10) + ((b[4] & 0x0f) << 6) + (b[5] & 0x3f) + 0x10000);
    }
    last = m.index! + m[0].length;
  }
  return out + decodeUtf8Strict(bytes.slice(last));
}

function decodeCharmap(bytes: string, name: string): string {
  const { decode } = codec(name);
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const ch = decode[bytes.charCodeAt(i)];
    if (ch === '') throw new DecodeError(name);
    out += ch;
  }
  return out;
}

// ---- fix_encoding ---------------------------------------------------------------------

const ALTERED_UTF8_RE = /[\xc2\xc3\xc5\xce\xd0\xd9][ ]|[\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf]|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf][ ]|[\xf0][ ][\x80-\xbf][\x80-\xbf]|[\xf0][\x80-\xbf][ ][\x80-\xbf]|[\xf0][\x80-\xbf][\x80-\xbf][ ]/g;
const LOSSY_UTF8_RE = /[\xc2-\xdf][\x1a]|[\xc2-\xc3][?]|\xed[\xa0-\xaf][\x1a?]\xed[\xb0-\xbf][\x1a?\x80-\xbf]|\xed[\xa0-\xaf][\x1a?\x80-\xbf]\xed[\xb0-\xbf][\x1a?]|[\xe0-\xef][\x1a?][\x1a\x80-\xbf]|[\xe0-\xef][\x1a\x80-\xbf][\x1a?]|[\xf0-\xf4][\x1a?][\x1a\x80-\xbf][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a?][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a\x80-\xbf][\x1a?]|\x1a/g;
const ALTERED_UTF8_TEST = new RegExp(ALTERED_UTF8_RE.source);
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;
const REPLACEMENT_UTF8 = '\xef\xbf\xbd';

function restoreByteA0(bytes: string): string {
  return bytes.replace(A_GRAVE_WORD_RE, '\xc3\xa0 ').replace(ALTERED_UTF8_RE, (m) => m.replace(/ /g, '\xa0'));
}

/** badness.is_bad: the text holds a sequence that looks like mojibake. */
export function ftfyIsBad(text: string): boolean {
  return BADNESS_RE.test(text);
}

function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_RE, (sub) => (sub.length < text.length && ftfyIsBad(sub) ? fixEncoding(sub) : sub));
}

function fixC1Controls(text: string): string {
  const sloppy = codec('sloppy-windows-1252').decode;
  return text.replace(/[\x80-\x9f]/g, (c) => sloppy[c.charCodeAt(0)]);
}

function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || possibleEncoding(text, 'ascii') || !ftfyIsBad(text)) return text;
  const possible: string[] = [];
  for (const encoding of FTFY_CHARMAP_ENCODINGS) {
    if (!possibleEncoding(text, encoding)) continue;
    possible.push(encoding);
    let bytes = encodeBytes(text, encoding);
    try {
      if (encoding !== 'macroman' && ALTERED_UTF8_TEST.test(bytes)) bytes = restoreByteA0(bytes);
      if (encoding.startsWith('sloppy')) bytes = bytes.replace(LOSSY_UTF8_RE, REPLACEMENT_UTF8);
      return bytes.includes('\xed') || bytes.includes('\xc0') ? decodeUtf8Variants(bytes) : decodeUtf8Strict(bytes);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
  }
  if (UTF8_DETECTOR_TEST.test(text)) {
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  // ftfy asks for 'windows-1252' among the candidates, which its list never holds.
  if (possible.includes('latin-1')) {
    try {
      const fixed = decodeCharmap(encodeBytes(text, 'latin-1'), 'windows-1252');
      if (fixed !== text) return fixed;
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
  }
  if (/[\x80-\x9f]/.test(text)) return fixC1Controls(text);
  return text;
}

/** ftfy.fix_encoding: repair mojibake until a step changes nothing. */
export function fixEncoding(text: string): string {
  for (;;) {
    const next = fixEncodingOneStep(text);
    if (next === text) return text;
    text = next;
  }
}

// ---- fix_text -------------------------------------------------------------------------

// Every character some step other than fix_encoding and NFC acts on: text without any of them
// goes through those steps unchanged, so they are skipped (a speed-up, same result).
const CHARACTER_FIX_NEEDED = new RegExp(
  `[&\x80-\x9f${Object.keys(LIGATURES).join('')}\u3000\uff01-\uffef\u02bc\u2018-\u201f\r\u2028\u2029\u0085` +
    '\ud800-\udfff\x1b\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]',
);

function fixSegment(segment: string, unescapeHtml: boolean): string {
  let text = segment;
  for (;;) {
    const orig = text;
    const characters = CHARACTER_FIX_NEEDED.test(text);
    if (unescapeHtml && characters) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    if (characters || CHARACTER_FIX_NEEDED.test(text)) {
      if (/[\x80-\x9f]/.test(text)) text = fixC1Controls(text);
      text = fixLatinLigatures(text);
      text = fixCharacterWidth(text);
      text = uncurlQuotes(text);
      text = fixLineBreaks(text);
      text = fixSurrogates(text);
      text = text.replace(ANSI_RE, '');
      text = text.replace(CONTROL_RE, '');
    }
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

const ONLY_PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** ftfy.fix_text with its default configuration. */
export function ftfyFixText(text: string): string {
  // Printable ASCII without '&' or ESC is a fixed point of every step.
  if (ONLY_PRINTABLE_ASCII.test(text) && text.indexOf('&') < 0) return text;
  let out = '';
  let unescapeHtml = true;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    if (end - pos > 1_000_000) end = pos + 1_000_000;
    const segment = text.slice(pos, end);
    // Once a segment holds '<' (the text looks like HTML), ftfy stops unescaping for the rest.
    if (unescapeHtml && segment.includes('<')) unescapeHtml = false;
    out += fixSegment(segment, unescapeHtml);
    pos = end;
  }
  return out;
}
