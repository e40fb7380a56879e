// A small SVG plotter for the scaling report: scatter points and lines on linear or log axes,
// with labelled axes, log ticks (decades, and 2·/5· ticks when the range is short), a grid and a legend.

export type Marker = 'circle' | 'square' | 'triangle' | 'diamond' | 'none';
export type LineStyle = 'solid' | 'dashed' | 'dotted' | 'none';

export interface PlotSeries {
  label: string;
  points: { x: number; y: number }[];
  color: string;
  marker?: Marker;
  line?: LineStyle;
  /** Leave out of the legend (e.g. a second part of an already-labelled series). */
  hideInLegend?: boolean;
  /** Markers drawn as outlines only (e.g. points a fit did not use). */
  hollow?: boolean;
  /** A shaded band (e.g. a confidence band), drawn under everything: lower and upper y at each x. */
  band?: { x: number; lo: number; hi: number }[];
}

/** A horizontal reference line across the plot (e.g. chance level). */
export interface ReferenceLine {
  y: number;
  label: string;
  color: string;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  xLog?: boolean;
  yLog?: boolean;
  width?: number;
  height?: number;
  /** Text lines drawn under the legend (e.g. fitted laws). */
  notes?: string[];
  /** Horizontal lines across the plot, labelled at the right end. */
  references?: ReferenceLine[];
  /** Pixels kept right of the plot for the legend (default 230). */
  legendWidth?: number;
}

/** Distinguishable colours (Okabe–Ito, readable by colour-blind readers too). */
export const palette = ['#E69F00', '#0072B2', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
export const markers: Marker[] = ['circle', 'square', 'triangle', 'diamond'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const superscripts: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };

/** A tick label: plain digits between 0.001 and 10⁴, otherwise m×10ᵏ. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e4) return String(Number(v.toPrecision(6)));
  const k = Math.floor(Math.log10(a) + 1e-9);
  const m = Number((v / 10 ** k).toPrecision(3));
  const power = '10' + String(k).split('').map((c) => superscripts[c]).join('');
  return m === 1 ? power : `${m}×${power}`;
}

export interface Ticks {
  major: number[];
  minor: number[];
}

/**
 * Ticks of a log axis over [lo, hi]: labelled decades on long ranges; on short ones the 2·/5· or all
 * 1…9 multiples are labelled too, and a range too short for those gets linear ticks.
 */
export function logTicks(lo: number, hi: number): Ticks {
  const k0 = Math.floor(Math.log10(lo) + 1e-9);
  const k1 = Math.ceil(Math.log10(hi) - 1e-9);
  const decades = Math.log10(hi / lo);
  const labelled = decades < 0.8 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : decades < 2.5 ? [1, 2, 5] : [1];
  const stride = Math.max(1, Math.ceil((k1 - k0) / 8)); // at most ~8 labelled decades
  const major: number[] = [];
  const minor: number[] = [];
  for (let k = k0; k <= k1; k++) {
    for (let m = 1; m <= 9; m++) {
      const v = Number((m * 10 ** k).toPrecision(12));
      if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
      if (labelled.includes(m) && (m !== 1 || (k - k0) % stride === 0)) major.push(v);
      else minor.push(v);
    }
  }
  if (major.length < 2) return { major: linearTicks(lo, hi).major.filter((v) => v > 0), minor };
  return { major, minor };
}

/** Ticks of a linear axis: about 6 at 1, 2 or 5 times a power of ten. */
export function linearTicks(lo: number, hi: number): Ticks {
  const raw = (hi - lo) / 6 || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  const major: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) major.push(Number(v.toPrecision(12)));
  return { major, minor: [] };
}

interface Scale {
  lo: number;
  hi: number;
  log: boolean;
  toPixel: (v: number) => number;
  ticks: Ticks;
}

function makeScale(values: number[], log: boolean, from: number, to: number, axis: string): Scale {
  const usable = log ? values.filter((v) => v > 0 && Number.isFinite(v)) : values.filter(Number.isFinite);
  if (usable.length === 0) throw new Error(`plot: no ${log ? 'positive ' : ''}finite values for the ${axis} axis`);
  let lo = Math.min(...usable);
  let hi = Math.max(...usable);
  if (log) {
    const pad = Math.max(Math.log10(hi / lo) * 0.05, 0.05);
    lo = lo / 10 ** pad;
    hi = hi * 10 ** pad;
    const a = Math.log10(lo);
    const b = Math.log10(hi);
    return { lo, hi, log, ticks: logTicks(lo, hi), toPixel: (v) => from + ((Math.log10(v) - a) / (b - a)) * (to - from) };
  }
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.1 || 1;
  lo -= pad;
  hi += pad;
  return { lo, hi, log, ticks: linearTicks(lo, hi), toPixel: (v) => from + ((v - lo) / (hi - lo)) * (to - from) };
}

function markerSvg(marker: Marker, x: number, y: number, color: string, hollow = false): string {
  const r = 4.5;
  const f = (n: number) => n.toFixed(1);
  const style = hollow ? `fill="white" fill-opacity="0.6" stroke="${color}" stroke-width="1.4"` : `fill="${color}" stroke="#222" stroke-width="0.6"`;
  switch (marker) {
    case 'circle':
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${r}" ${style}/>`;
    case 'square':
      return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${2 * r}" height="${2 * r}" ${style}/>`;
    case 'triangle':
      return `<path d="M${f(x)},${f(y - r * 1.2)} L${f(x + r * 1.1)},${f(y + r * 0.8)} L${f(x - r * 1.1)},${f(y + r * 0.8)} Z" ${style}/>`;
    case 'diamond':
      return `<path d="M${f(x)},${f(y - r * 1.3)} L${f(x + r)},${f(y)} L${f(x)},${f(y + r * 1.3)} L${f(x - r)},${f(y)} Z" ${style}/>`;
    case 'none':
      return '';
  }
}

const dash: Record<LineStyle, string> = { solid: '', dashed: ' stroke-dasharray="7,4"', dotted: ' stroke-dasharray="2,3"', none: '' };

/** Renders a plot as a standalone SVG document. */
export function renderSvg(spec: PlotSpec): string {
  const width = spec.width ?? 820;
  const height = spec.height ?? 500;
  const legendWidth = spec.legendWidth ?? 230;
  const m = { left: 78, right: legendWidth + 20, top: 44, bottom: 62 };
  const plotRight = width - m.right;
  const plotBottom = height - m.bottom;
  const all = spec.series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error(`plot '${spec.title}': no points to draw`);
  // bands and reference lines widen the y range only a little: the data decides the axes
  const yValues = [...all.map((p) => p.y), ...(spec.references ?? []).map((r) => r.y)];
  const xs = makeScale(all.map((p) => p.x), spec.xLog ?? false, m.left, plotRight, 'x');
  const ys = makeScale(yValues, spec.yLog ?? false, plotBottom, m.top, 'y');
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${(m.left + plotRight) / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);

  // grid and ticks
  const inRange = (v: number, s: Scale) => v >= s.lo && v <= s.hi;
  for (const v of xs.ticks.minor.filter((v) => inRange(v, xs))) {
    const x = xs.toPixel(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${plotBottom}" stroke="#eee"/>`);
    out.push(`<line x1="${x}" y1="${plotBottom}" x2="${x}" y2="${plotBottom + 3}" stroke="#444"/>`);
  }
  for (const v of ys.ticks.minor.filter((v) => inRange(v, ys))) {
    const y = ys.toPixel(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${plotRight}" y2="${y}" stroke="#eee"/>`);
    out.push(`<line x1="${m.left - 3}" y1="${y}" x2="${m.left}" y2="${y}" stroke="#444"/>`);
  }
  for (const v of xs.ticks.major.filter((v) => inRange(v, xs))) {
    const x = xs.toPixel(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${plotBottom}" stroke="#ccc"/>`);
    out.push(`<line x1="${x}" y1="${plotBottom}" x2="${x}" y2="${plotBottom + 6}" stroke="#222"/>`);
    out.push(`<text class="tick" x="${x}" y="${plotBottom + 20}" text-anchor="middle">${escapeXml(formatTick(v))}</text>`);
  }
  for (const v of ys.ticks.major.filter((v) => inRange(v, ys))) {
    const y = ys.toPixel(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${plotRight}" y2="${y}" stroke="#ccc"/>`);
    out.push(`<line x1="${m.left - 6}" y1="${y}" x2="${m.left}" y2="${y}" stroke="#222"/>`);
    out.push(`<text class="tick" x="${m.left - 9}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(v))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${plotRight - m.left}" height="${plotBottom - m.top}" fill="none" stroke="#222"/>`);
  const xLabel = spec.xLabel + (xs.log ? ' (log scale)' : '');
  const yLabel = spec.yLabel + (ys.log ? ' (log scale)' : '');
  out.push(`<text class="axis-label" x="${(m.left + plotRight) / 2}" y="${height - 18}" text-anchor="middle" font-size="13">${escapeXml(xLabel)}</text>`);
  out.push(`<text class="axis-label" x="18" y="${(m.top + plotBottom) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${(m.top + plotBottom) / 2})">${escapeXml(yLabel)}</text>`);

  // data: bands first, then reference lines and lines, markers on top
  out.push(`<g clip-path="url(#plot-area)">`);
  const clampY = (v: number) => (ys.log ? Math.min(Math.max(v, ys.lo / 10), ys.hi * 10) : v);
  for (const s of spec.series) {
    const band = (s.band ?? []).filter((b) => (!xs.log || b.x > 0) && (!ys.log || (b.lo > 0 && b.hi > 0)));
    if (band.length < 2) continue;
    const upper = band.map((b) => `${xs.toPixel(b.x).toFixed(1)},${ys.toPixel(clampY(b.hi)).toFixed(1)}`);
    const lower = [...band].reverse().map((b) => `${xs.toPixel(b.x).toFixed(1)},${ys.toPixel(clampY(b.lo)).toFixed(1)}`);
    out.push(`<path class="band" d="M${[...upper, ...lower].join(' L')} Z" fill="${s.color}" fill-opacity="0.18" stroke="none"/>`);
  }
  for (const r of spec.references ?? []) {
    if (ys.log && r.y <= 0) continue;
    const y = ys.toPixel(r.y).toFixed(1);
    out.push(`<line class="reference" x1="${m.left}" y1="${y}" x2="${plotRight}" y2="${y}" stroke="${r.color}" stroke-width="1.2" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${plotRight - 4}" y="${Number(y) - 5}" text-anchor="end" font-size="11" fill="${r.color}">${escapeXml(r.label)}</text>`);
  }
  for (const s of spec.series) {
    const line = s.line ?? 'none';
    const pts = s.points.filter((p) => (!xs.log || p.x > 0) && (!ys.log || p.y > 0));
    if (line !== 'none' && pts.length > 1) {
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${xs.toPixel(p.x).toFixed(1)},${ys.toPixel(p.y).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash[line]}/>`);
    }
  }
  for (const s of spec.series) {
    const marker = s.marker ?? 'circle';
    for (const p of s.points) {
      if ((xs.log && p.x <= 0) || (ys.log && p.y <= 0)) continue;
      out.push(markerSvg(marker, xs.toPixel(p.x), ys.toPixel(p.y), s.color, s.hollow));
    }
  }
  out.push(`</g>`);
  out.push(`<defs><clipPath id="plot-area"><rect x="${m.left}" y="${m.top}" width="${plotRight - m.left}" height="${plotBottom - m.top}"/></clipPath></defs>`);

  // legend
  const lx = plotRight + 16;
  let ly = m.top + 8;
  out.push(`<g class="legend">`);
  for (const s of spec.series.filter((s) => !s.hideInLegend)) {
    const line = s.line ?? 'none';
    if (line !== 'none') out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash[line]}/>`);
    if (s.band?.length && line === 'none' && (s.marker ?? 'circle') === 'none') out.push(`<rect x="${lx}" y="${ly - 6}" width="26" height="12" fill="${s.color}" fill-opacity="0.18"/>`);
    if ((s.marker ?? 'circle') !== 'none') out.push(markerSvg(s.marker ?? 'circle', lx + 13, ly, s.color, s.hollow));
    out.push(`<text x="${lx + 34}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
    ly += 20;
  }
  for (const note of spec.notes ?? []) {
    ly += 4;
    out.push(`<text x="${lx}" y="${ly}" dominant-baseline="middle" font-size="11" fill="#333">${escapeXml(note)}</text>`);
    ly += 14;
  }
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
