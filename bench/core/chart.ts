import { describeMachine } from "./machine.ts";
import type { BenchReport } from "./report.ts";
import { formatValue } from "./runner.ts";

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

interface Row {
  readonly label: string;
  readonly detail: string;
  readonly ratio: number | undefined;
  readonly roundRatios: readonly number[];
  /** Where the target sits on the ratio axis, if it can be drawn there. */
  readonly targetRatio: number | undefined;
  readonly verdict: "pass" | "fail" | "n/a";
}

const COLORS = { pass: "#2e7d32", fail: "#d84315", "n/a": "#546e7a" } as const;

/**
 * A self-contained SVG: one bar per headline metric showing subject / baseline (the median ratio),
 * a dot per round's own ratio, the 1.0 line and the target. Metrics without a baseline are listed
 * with their medians below the bars.
 */
export function renderChart(report: BenchReport): string {
  const rows: Row[] = [];
  const plain: string[] = [];
  for (const result of report.cases) {
    const baseline = result.baselines[0]?.id;
    for (const metric of result.metrics) {
      if (metric.spec.headline !== true && metric.spec.chart !== true) continue;
      const subjectText = formatValue(metric.medians[result.subject.id], metric.spec);
      const label = `${result.scenario} ${result.id}: ${metric.spec.label}${metric.spec.better === "lower" ? " (lower is better)" : ""}`;
      if (baseline === undefined) {
        plain.push(`${label}: ${subjectText}${metric.spec.unit === "/s" ? "/s" : ""}`);
        continue;
      }
      const baselineMedian = metric.medians[baseline] ?? Number.NaN;
      const target = metric.spec.target;
      let targetRatio = target?.ratioAtLeast ?? target?.ratioAtMost;
      const bound = target?.atMost ?? target?.atLeast;
      if (targetRatio === undefined && bound !== undefined && Number.isFinite(baselineMedian) && baselineMedian > 0) targetRatio = bound / baselineMedian;
      rows.push({
        label,
        detail: `${subjectText} vs ${formatValue(baselineMedian, metric.spec)} ${baseline}${target ? ` — target ${target.text}` : ""}`,
        ratio: metric.ratio,
        roundRatios: metric.roundRatios,
        targetRatio,
        verdict: metric.verdict,
      });
    }
  }

  const width = 1100;
  const left = 420;
  const barWidth = 480;
  const rowHeight = 46;
  const top = 100;
  const maxRatio = Math.max(1.5, ...rows.flatMap((row) => [row.ratio ?? 0, ...row.roundRatios, row.targetRatio ?? 0]).map((value) => value * 1.1));
  const x = (ratio: number): number => left + (Math.min(ratio, maxRatio) / maxRatio) * barWidth;
  const height = top + rows.length * rowHeight + 40 + plain.length * 20 + 30;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="20" y="28" font-size="18" font-weight="600">peer-server / baseline relay, ratio of medians</text>`);
  const code = report.code.atStart;
  out.push(`<text x="20" y="50" fill="#555">${escape(report.command)} — ${escape(report.startedAt)}, ${escape(report.client)} clients, code ${escape(code.commit)}${code.modified.length > 0 ? " (modified)" : ""}</text>`);
  out.push(`<text x="20" y="68" fill="#555">${escape(describeMachine(report.machine))}; server on CPU ${escape(String(report.pinning.target))}, load on CPU ${escape(String(report.pinning.load))}</text>`);
  // Axis: ticks every 0.25.
  for (let tick = 0; tick <= maxRatio + 1e-9; tick += 0.25) {
    const tx = x(tick);
    out.push(`<line x1="${tx}" y1="${top - 8}" x2="${tx}" y2="${top + rows.length * rowHeight}" stroke="${tick === 1 ? "#000" : "#e0e0e0"}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${tx}" y="${top - 12}" text-anchor="middle" fill="#555">${tick.toFixed(2)}x</text>`);
  }
  rows.forEach((row, index) => {
    const y = top + index * rowHeight;
    out.push(`<text x="20" y="${y + 18}">${escape(row.label)}</text>`);
    out.push(`<text x="20" y="${y + 35}" fill="#666" font-size="11">${escape(row.detail)}</text>`);
    if (row.ratio !== undefined && Number.isFinite(row.ratio)) {
      out.push(`<rect x="${left}" y="${y + 8}" width="${Math.max(1, x(row.ratio) - left)}" height="22" fill="${COLORS[row.verdict]}" opacity="0.85"/>`);
      const labelX = Math.max(x(row.ratio), ...row.roundRatios.map(x), row.targetRatio === undefined ? 0 : x(row.targetRatio)) + 8;
      out.push(`<text x="${labelX}" y="${y + 24}" font-weight="600">${row.ratio.toFixed(2)}x${row.verdict === "n/a" ? "" : ` ${row.verdict.toUpperCase()}`}</text>`);
    } else {
      out.push(`<text x="${left + 4}" y="${y + 24}" fill="#d84315">no ratio (failed runs)</text>`);
    }
    for (const ratio of row.roundRatios) out.push(`<circle cx="${x(ratio)}" cy="${y + 19}" r="3" fill="#fff" stroke="#000"/>`);
    if (row.targetRatio !== undefined && Number.isFinite(row.targetRatio)) {
      const tx = x(row.targetRatio);
      out.push(`<line x1="${tx}" y1="${y + 4}" x2="${tx}" y2="${y + 34}" stroke="#1565c0" stroke-width="3"/>`);
    }
  });
  let y = top + rows.length * rowHeight + 24;
  out.push(`<text x="20" y="${y}" fill="#555" font-size="11">Bars: server / baseline median (green = target met, red = missed, grey = no numeric target; CPU rows: above 1 costs more). Dots: each round's own ratio. Blue tick: target.</text>`);
  if (plain.length > 0) {
    y += 24;
    out.push(`<text x="20" y="${y}" font-weight="600">Without a baseline (medians):</text>`);
    for (const line of plain) {
      y += 20;
      out.push(`<text x="30" y="${y}">${escape(line)}</text>`);
    }
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
