// Reading results tables (CSV with a header row, or JSON lines) into rows of named values,
// selecting rows (`col=value`, `col!=value`) and evaluating column expressions (`a*b`).
import { readRegularTextSync } from '../util/regular_file.js';

export type Cell = string | number | boolean | null;
/** One row; JSON-lines records are flattened, so `{metrics: {zs: 0.5}}` has the column `metrics.zs`. */
export type Row = Record<string, Cell>;

export interface Table {
  /** Where the rows came from, for error messages. */
  source: string;
  columns: string[];
  rows: Row[];
  /** Line number in the file of each row (1-based), for error messages. */
  lines: number[];
}

/** Reads FILE.csv or FILE.jsonl (chosen by extension: .jsonl/.ndjson are JSON lines, anything else CSV). */
export function readTable(path: string): Table {
  let text: string;
  try {
    text = readRegularTextSync(path, { what: 'results file' });
  } catch (err) {
    const message = (err as Error).message;
    throw new Error(/no such file/.test(message) ? `cannot read results file ${path}: file not found` : message);
  }
  return /\.(jsonl|ndjson)$/i.test(path) ? parseJsonLines(text, path) : parseCsv(text, path);
}

/** Parses CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes). Numeric fields become numbers, empty ones null. */
export function parseCsv(text: string, source = '<csv>'): Table {
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && field === '') {
      inQuotes = true;
      fieldStarted = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      if (fieldStarted || field !== '' || fields.length > 0) {
        fields.push(field);
        records.push({ fields, line: recordLine });
      }
      fields = [];
      field = '';
      fieldStarted = false;
      line++;
      recordLine = line;
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (inQuotes) throw new Error(`${source}: unterminated quoted field starting on line ${recordLine}`);
  if (fieldStarted || field !== '' || fields.length > 0) {
    fields.push(field);
    records.push({ fields, line: recordLine });
  }
  if (records.length === 0) throw new Error(`${source}: empty file (expected a header row)`);
  const columns = records[0].fields.map((c) => c.trim());
  const rows: Row[] = [];
  const lines: number[] = [];
  for (const rec of records.slice(1)) {
    if (rec.fields.length !== columns.length) {
      throw new Error(`${source}: line ${rec.line} has ${rec.fields.length} fields, the header has ${columns.length}`);
    }
    const row: Row = {};
    columns.forEach((c, j) => (row[c] = csvCell(rec.fields[j])));
    rows.push(row);
    lines.push(rec.line);
  }
  return { source, columns, rows, lines };
}

function csvCell(s: string): Cell {
  const t = s.trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) && /^[-+.\d]/.test(t) ? n : s;
}

/** Parses JSON lines: one object a line, blank lines ignored, nested objects flattened with dots. */
export function parseJsonLines(text: string, source = '<jsonl>'): Table {
  const rows: Row[] = [];
  const lines: number[] = [];
  const columns = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const s = raw.trim();
    if (s === '') return;
    let value: unknown;
    try {
      value = JSON.parse(s);
    } catch (err) {
      throw new Error(`${source}: line ${i + 1} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${source}: line ${i + 1} is not a JSON object`);
    const row: Row = {};
    flatten(value as Record<string, unknown>, '', row);
    Object.keys(row).forEach((k) => columns.add(k));
    rows.push(row);
    lines.push(i + 1);
  });
  return { source, columns: [...columns], rows, lines };
}

function flatten(obj: Record<string, unknown>, prefix: string, out: Row): void {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key + '.', out);
    else if (Array.isArray(v)) out[key] = JSON.stringify(v);
    else out[key] = v as Cell;
  }
}

/** A row filter: `col=value` keeps rows equal to value, `col!=value` rows that differ (numbers compare numerically). */
export interface Condition {
  column: string;
  value: string;
  negate: boolean;
}

export function parseCondition(spec: string): Condition {
  const m = /^([^=!]+)(!?=)(.*)$/.exec(spec);
  if (!m) throw new Error(`bad --where '${spec}': expected COLUMN=VALUE or COLUMN!=VALUE`);
  return { column: m[1].trim(), value: m[3], negate: m[2] === '!=' };
}

function cellEquals(cell: Cell, value: string): boolean {
  if (cell === null) return value === '';
  if (typeof cell === 'number') {
    const n = Number(value);
    return value.trim() !== '' && Number.isFinite(n) ? n === cell : String(cell) === value;
  }
  return String(cell) === value;
}

/** The rows (with their line numbers) that meet every condition; unknown columns are an error. */
export function selectRows(table: Table, conditions: Condition[]): Table {
  for (const c of conditions) requireColumn(table, c.column);
  const rows: Row[] = [];
  const lines: number[] = [];
  table.rows.forEach((row, i) => {
    if (conditions.every((c) => cellEquals(row[c.column] ?? null, c.value) !== c.negate)) {
      rows.push(row);
      lines.push(table.lines[i]);
    }
  });
  return { ...table, rows, lines };
}

export function requireColumn(table: Table, column: string): void {
  if (!table.columns.includes(column)) {
    throw new Error(`${table.source}: no column '${column}' (columns: ${table.columns.join(', ')})`);
  }
}

/**
 * Evaluates a column expression on every row: a column name, or a product of columns such as
 * `gmacs*samples_seen`. Every factor must be a finite number in every row.
 */
export function columnValues(table: Table, expression: string): number[] {
  const factors = expression.split('*').map((s) => s.trim());
  if (factors.some((f) => f === '')) throw new Error(`bad column expression '${expression}': expected COLUMN or COLUMN*COLUMN…`);
  for (const f of factors) requireColumn(table, f);
  return table.rows.map((row, i) => {
    let product = 1;
    for (const f of factors) {
      const v = row[f];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Error(`${table.source}: line ${table.lines[i]}: column '${f}' is ${v === null || v === undefined ? 'empty' : `not a number (${JSON.stringify(v)})`}`);
      }
      product *= v;
    }
    return product;
  });
}
