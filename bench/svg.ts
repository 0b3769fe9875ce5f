// A tiny SVG chart writer for BENCHMARKS.md: grouped bars (ratios, throughput) and box plots
// (latency distributions). Plain strings, no dependency; GitHub renders the files as images.

export interface Bar {
  label: string;
  value: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChartOptions {
  title: string;
  unit: string;
  groups: BarGroup[];
  /** A dashed horizontal line, e.g. a target ratio. */
  reference?: { value: number; label: string };
}

export interface BoxSeries {
  label: string;
  values: number[];
}

export interface BoxChartOptions {
  title: string;
  unit: string;
  series: BoxSeries[];
}

const PALETTE = ["#3b6ea8", "#d9822b", "#5a9e5a", "#a84a4a", "#7a5ea8", "#8c8c8c"];
const WIDTH = 720;
const HEIGHT = 360;
const MARGIN = { top: 48, right: 24, bottom: 64, left: 72 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatNumber(value: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A "nice" axis maximum (1 to 10 in small steps, times a power of ten) at or above `max`. */
function niceCeiling(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function frame(title: string, unit: string, axisMax: number, body: string[], legend: string[]): string {
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number) => MARGIN.top + plotHeight * (1 - value / axisMax);
  const ticks: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const value = (axisMax * i) / 5;
    ticks.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(value)}" y2="${y(value)}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 8}" y="${y(value) + 4}" text-anchor="end">${formatNumber(value)}</text>`,
    );
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...ticks,
    `<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(unit)}</text>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
    ...body,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}

export function barChart(opts: BarChartOptions): string {
  const seriesLabels = [...new Set(opts.groups.flatMap((g) => g.bars.map((b) => b.label)))];
  const values = opts.groups.flatMap((g) => g.bars.map((b) => b.value));
  const axisMax = niceCeiling(Math.max(...values, opts.reference?.value ?? 0) * 1.1);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number) => MARGIN.top + plotHeight * (1 - value / axisMax);
  const groupWidth = plotWidth / Math.max(opts.groups.length, 1);
  const barWidth = (groupWidth * 0.7) / Math.max(seriesLabels.length, 1);
  const body: string[] = [];
  opts.groups.forEach((group, groupIndex) => {
    const groupStart = MARGIN.left + groupIndex * groupWidth + groupWidth * 0.15;
    for (const bar of group.bars) {
      const seriesIndex = seriesLabels.indexOf(bar.label);
      const x = groupStart + seriesIndex * barWidth;
      const top = y(bar.value);
      body.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(HEIGHT - MARGIN.bottom - top).toFixed(1)}" fill="${PALETTE[seriesIndex % PALETTE.length]}"><title>${escapeXml(`${group.label} ${bar.label}: ${formatNumber(bar.value)} ${opts.unit}`)}</title></rect>`,
        `<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="11">${formatNumber(bar.value)}</text>`,
      );
    }
    body.push(
      `<text x="${(MARGIN.left + (groupIndex + 0.5) * groupWidth).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${escapeXml(group.label)}</text>`,
    );
  });
  if (opts.reference) {
    const ry = y(opts.reference.value);
    body.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${ry}" y2="${ry}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${WIDTH - MARGIN.right - 4}" y="${ry - 5}" text-anchor="end" fill="#c00">${escapeXml(opts.reference.label)}</text>`,
    );
  }
  return frame(opts.title, opts.unit, axisMax, body, legend(seriesLabels));
}

function legend(labels: string[]): string[] {
  return labels.flatMap((label, index) => {
    const x = MARGIN.left + index * 150;
    const y = HEIGHT - 18;
    return [
      `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${PALETTE[index % PALETTE.length]}"/>`,
      `<text x="${x + 18}" y="${y}">${escapeXml(label)}</text>`,
    ];
  });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

/** Box = quartiles, line = median, whiskers = p5 and p95 (so one outlier does not flatten the plot). */
export function boxChart(opts: BoxChartOptions): string {
  const summaries = opts.series.map((series) => {
    const sorted = [...series.values].sort((a, b) => a - b);
    return {
      label: series.label,
      p5: quantile(sorted, 0.05),
      q1: quantile(sorted, 0.25),
      median: quantile(sorted, 0.5),
      q3: quantile(sorted, 0.75),
      p95: quantile(sorted, 0.95),
    };
  });
  const axisMax = niceCeiling(Math.max(...summaries.map((s) => s.p95), 0) * 1.1);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number) => MARGIN.top + plotHeight * (1 - value / axisMax);
  const slot = plotWidth / Math.max(summaries.length, 1);
  const body: string[] = [];
  summaries.forEach((s, index) => {
    const center = MARGIN.left + (index + 0.5) * slot;
    const half = Math.min(slot * 0.3, 40);
    const color = PALETTE[index % PALETTE.length];
    body.push(
      `<line x1="${center}" x2="${center}" y1="${y(s.p95)}" y2="${y(s.q3)}" stroke="#444"/>`,
      `<line x1="${center}" x2="${center}" y1="${y(s.q1)}" y2="${y(s.p5)}" stroke="#444"/>`,
      `<line x1="${center - half / 2}" x2="${center + half / 2}" y1="${y(s.p95)}" y2="${y(s.p95)}" stroke="#444"/>`,
      `<line x1="${center - half / 2}" x2="${center + half / 2}" y1="${y(s.p5)}" y2="${y(s.p5)}" stroke="#444"/>`,
      `<rect x="${center - half}" y="${y(s.q3)}" width="${2 * half}" height="${Math.max(y(s.q1) - y(s.q3), 1)}" fill="${color}" fill-opacity="0.35" stroke="${color}"><title>${escapeXml(`${s.label}: median ${formatNumber(s.median)} ${opts.unit}`)}</title></rect>`,
      `<line x1="${center - half}" x2="${center + half}" y1="${y(s.median)}" y2="${y(s.median)}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${center + half + 4}" y="${y(s.median) + 4}" font-size="11">${formatNumber(s.median)}</text>`,
      `<text x="${center}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${escapeXml(s.label)}</text>`,
    );
  });
  const note = `<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - 18}" text-anchor="end" fill="#666">box: quartiles, bar: median, whiskers: p5–p95</text>`;
  return frame(opts.title, opts.unit, axisMax, body, [note]);
}

export interface LineSeries {
  label: string;
  points: [number, number][];
}

export interface LineChartOptions {
  title: string;
  xUnit: string;
  yUnit: string;
  series: LineSeries[];
}

/** Lines over a shared x axis (time), y from zero so a flat line looks flat. */
export function lineChart(opts: LineChartOptions): string {
  const xs = opts.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = opts.series.flatMap((s) => s.points.map(([, y]) => y));
  const xMax = Math.max(...xs, 1);
  const axisMax = niceCeiling(Math.max(...ys, 0) * 1.1);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number) => MARGIN.left + (plotWidth * value) / xMax;
  const y = (value: number) => MARGIN.top + plotHeight * (1 - value / axisMax);
  const body = opts.series.map((series, index) => {
    const path = series.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(" ");
    return `<polyline points="${path}" fill="none" stroke="${PALETTE[index % PALETTE.length]}" stroke-width="2"/>`;
  });
  body.push(
    `<text x="${MARGIN.left}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">0</text>`,
    `<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${formatNumber(xMax)} ${escapeXml(opts.xUnit)}</text>`,
  );
  return frame(opts.title, opts.yUnit, axisMax, body, legend(opts.series.map((s) => s.label)));
}
