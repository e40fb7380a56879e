// A CSV of image paths and captions (OpenCLIP's --csv-img-key/--csv-caption-key/
// --csv-separator): a header row naming the columns, quoted fields with "" escapes.
// Relative paths are taken from the CSV's folder. Missing image files are counted, not fatal.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

import type { RawSample } from './sample.js';
import { SkipCounter } from './skip_counter.js';
import { readRegularTextSync } from '../util/regular_file.js';

export interface CsvOptions {
  separator?: string;
  imageKey?: string;
  captionKey?: string;
  skipped?: SkipCounter;
}

/** Splits CSV text into rows of fields (RFC 4180 quoting; CRLF or LF line ends). */
export function parseCsv(text: string, separator = ',', source = 'CSV'): string[][] {
  if (separator.length !== 1) throw new Error(`CSV separator must be one character, got '${separator}'`);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let quoteLine = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') {
      quoted = true;
      quoteLine = line;
    }
    else if (c === separator) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  // An unclosed quote would swallow every following row into one field: refuse it.
  if (quoted) throw new Error(`${source}: unterminated quote: the field opened on line ${quoteLine} is never closed`);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

export class CsvSource implements Iterable<RawSample> {
  readonly skipped: SkipCounter;
  readonly rows: { path: string; caption: string }[];

  constructor(readonly file: string, options: CsvOptions = {}) {
    const separator = options.separator ?? ',';
    const imageKey = options.imageKey ?? 'filepath';
    const captionKey = options.captionKey ?? 'title';
    this.skipped = options.skipped ?? new SkipCounter();
    let text: string;
    text = readRegularTextSync(file, { what: 'CSV' }); // its errors name the file
    const [header, ...rows] = parseCsv(text, separator, `CSV '${file}'`);
    if (!header) throw new Error(`CSV '${file}' is empty`);
    const ii = header.indexOf(imageKey);
    const ci = header.indexOf(captionKey);
    if (ii < 0 || ci < 0) {
      throw new Error(`CSV '${file}': header has columns [${header.join(', ')}] (separator '${separator}'); expected '${imageKey}' and '${captionKey}'`);
    }
    const base = dirname(file);
    this.rows = rows.map((r, n) => {
      if (r.length !== header.length) throw new Error(`CSV '${file}' row ${n + 2}: ${r.length} fields, the header has ${header.length}`);
      return { path: isAbsolute(r[ii]) ? r[ii] : join(base, r[ii]), caption: r[ci] };
    });
  }

  *[Symbol.iterator](): Iterator<RawSample> {
    for (const { path, caption } of this.rows) {
      if (!existsSync(path)) {
        this.skipped.add('missing_file', path);
        continue;
      }
      yield { key: path, path, caption };
    }
  }
}
