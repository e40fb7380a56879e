// HTML character-reference decoding, following Python's html.unescape (which CLIP's
// tokenizer applies twice): numeric references with the HTML5 fix-ups for invalid code
// points, and named references. Python knows all 2,231 HTML5 names; this table holds the
// ones seen in web captions (the HTML 4 set: Latin-1, symbols, Greek, punctuation). An
// unknown name is left as written, as Python does for names it does not know.

/** Names that HTML5 also accepts without the trailing ';' (Python honours that). */
const LEGACY: Record<string, string> = {
  AElig: 'Æ', AMP: '&', Aacute: 'Á', Acirc: 'Â', Agrave: 'À', Aring: 'Å', Atilde: 'Ã', Auml: 'Ä',
  COPY: '©', Ccedil: 'Ç', ETH: 'Ð', Eacute: 'É', Ecirc: 'Ê', Egrave: 'È', Euml: 'Ë', GT: '>',
  Iacute: 'Í', Icirc: 'Î', Igrave: 'Ì', Iuml: 'Ï', LT: '<', Ntilde: 'Ñ', Oacute: 'Ó', Ocirc: 'Ô',
  Ograve: 'Ò', Oslash: 'Ø', Otilde: 'Õ', Ouml: 'Ö', QUOT: '"', REG: '®', THORN: 'Þ', Uacute: 'Ú',
  Ucirc: 'Û', Ugrave: 'Ù', Uuml: 'Ü', Yacute: 'Ý', aacute: 'á', acirc: 'â', acute: '´', aelig: 'æ',
  agrave: 'à', amp: '&', aring: 'å', atilde: 'ã', auml: 'ä', brvbar: '¦', ccedil: 'ç', cedil: '¸',
  cent: '¢', copy: '©', curren: '¤', deg: '°', divide: '÷', eacute: 'é', ecirc: 'ê', egrave: 'è',
  eth: 'ð', euml: 'ë', frac12: '½', frac14: '¼', frac34: '¾', gt: '>', iacute: 'í', icirc: 'î',
  iexcl: '¡', igrave: 'ì', iquest: '¿', iuml: 'ï', laquo: '«', lt: '<', macr: '¯', micro: 'µ',
  middot: '·', nbsp: '\u00a0', not: '¬', ntilde: 'ñ', oacute: 'ó', ocirc: 'ô', ograve: 'ò', ordf: 'ª',
  ordm: 'º', oslash: 'ø', otilde: 'õ', ouml: 'ö', para: '¶', plusmn: '±', pound: '£', quot: '"',
  raquo: '»', reg: '®', sect: '§', shy: '\u00ad', sup1: '¹', sup2: '²', sup3: '³', szlig: 'ß',
  thorn: 'þ', times: '×', uacute: 'ú', ucirc: 'û', ugrave: 'ù', uml: '¨', uuml: 'ü', yacute: 'ý',
  yen: '¥', yuml: 'ÿ',
};

/** Names that need the ';'. */
const NAMED: Record<string, string> = {
  ...LEGACY,
  apos: "'", OElig: 'Œ', oelig: 'œ', Scaron: 'Š', scaron: 'š', Yuml: 'Ÿ', circ: 'ˆ', tilde: '˜',
  ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009', zwnj: '\u200c', zwj: '\u200d', lrm: '\u200e',
  rlm: '\u200f', ndash: '–', mdash: '—', lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”',
  bdquo: '„', dagger: '†', Dagger: '‡', permil: '‰', lsaquo: '‹', rsaquo: '›', euro: '€', fnof: 'ƒ',
  bull: '•', hellip: '…', prime: '′', Prime: '″', oline: '‾', frasl: '⁄', weierp: '℘', image: 'ℑ',
  real: 'ℜ', trade: '™', alefsym: 'ℵ', larr: '←', uarr: '↑', rarr: '→', darr: '↓', harr: '↔',
  crarr: '↵', lArr: '⇐', uArr: '⇑', rArr: '⇒', dArr: '⇓', hArr: '⇔', forall: '∀', part: '∂',
  exist: '∃', empty: '∅', nabla: '∇', isin: '∈', notin: '∉', ni: '∋', prod: '∏', sum: '∑',
  minus: '−', lowast: '∗', radic: '√', prop: '∝', infin: '∞', ang: '∠', and: '∧', or: '∨', cap: '∩',
  cup: '∪', int: '∫', there4: '∴', sim: '∼', cong: '≅', asymp: '≈', ne: '≠', equiv: '≡', le: '≤',
  ge: '≥', sub: '⊂', sup: '⊃', nsub: '⊄', sube: '⊆', supe: '⊇', oplus: '⊕', otimes: '⊗', perp: '⊥',
  sdot: '⋅', lceil: '⌈', rceil: '⌉', lfloor: '⌊', rfloor: '⌋', lang: '⟨', rang: '⟩', loz: '◊',
  spades: '♠', clubs: '♣', hearts: '♥', diams: '♦', star: '☆', starf: '★', check: '✓', cross: '✗',
  Alpha: 'Α', Beta: 'Β', Gamma: 'Γ', Delta: 'Δ', Epsilon: 'Ε', Zeta: 'Ζ', Eta: 'Η', Theta: 'Θ',
  Iota: 'Ι', Kappa: 'Κ', Lambda: 'Λ', Mu: 'Μ', Nu: 'Ν', Xi: 'Ξ', Omicron: 'Ο', Pi: 'Π', Rho: 'Ρ',
  Sigma: 'Σ', Tau: 'Τ', Upsilon: 'Υ', Phi: 'Φ', Chi: 'Χ', Psi: 'Ψ', Omega: 'Ω', alpha: 'α',
  beta: 'β', gamma: 'γ', delta: 'δ', epsilon: 'ε', zeta: 'ζ', eta: 'η', theta: 'θ', iota: 'ι',
  kappa: 'κ', lambda: 'λ', mu: 'μ', nu: 'ν', xi: 'ξ', omicron: 'ο', pi: 'π', rho: 'ρ', sigmaf: 'ς',
  sigma: 'σ', tau: 'τ', upsilon: 'υ', phi: 'φ', chi: 'χ', psi: 'ψ', omega: 'ω', thetasym: 'ϑ',
  upsih: 'ϒ', piv: 'ϖ', Tab: '\t', NewLine: '\n', excl: '!', num: '#', dollar: '$', percnt: '%',
  lpar: '(', rpar: ')', ast: '*', plus: '+', comma: ',', period: '.', sol: '/', colon: ':',
  semi: ';', equals: '=', quest: '?', commat: '@', lsqb: '[', bsol: '\\', rsqb: ']', lowbar: '_',
  grave: '`', lcub: '{', verbar: '|', vert: '|', rcub: '}', hyphen: '‐', dash: '‐',
};

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

function replaceCharref(match: string, body: string): string {
  if (body[0] === '#') {
    const hex = body[1] === 'x' || body[1] === 'X';
    const digits = body.slice(hex ? 2 : 1).replace(/;$/, '');
    return decodeNumeric(digits, hex);
  }
  if (body.endsWith(';')) {
    const full = NAMED[body.slice(0, -1)];
    if (full !== undefined && Object.hasOwn(NAMED, body.slice(0, -1))) return full;
  }
  // Longest legacy name that is a prefix, the rest kept (Python: "&ampx" → "&x").
  for (let len = Math.min(body.length, 6); len > 1; len--) {
    const name = body.slice(0, len);
    if (Object.hasOwn(LEGACY, name)) return LEGACY[name] + body.slice(len);
  }
  return match;
}

/** Python's html.unescape. Strings without '&' come back unchanged at once. */
export function htmlUnescape(text: string): string {
  if (text.indexOf('&') < 0) return text;
  return text.replace(CHARREF, replaceCharref);
}
