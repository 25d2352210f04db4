import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderChart } from "./chart.ts";
import type { CodeState, MachineInfo } from "./machine.ts";
import type { ProfileSummary } from "./profile.ts";
import { formatValue, type CaseResult, type MetricSummary, type RunRecord } from "./runner.ts";

/** Everything one invocation measured: what the JSON file holds and the chart draws. */
export interface BenchReport {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  /** The server code at the start and at the end of the invocation (each run starts the working tree's code). */
  readonly code: { readonly atStart: CodeState; readonly atEnd: CodeState };
  readonly pinning: { readonly target: string | null; readonly load: string | null };
  readonly client: string;
  readonly serverConfig: Readonly<Record<string, unknown>>;
  readonly cases: readonly CaseResult[];
  /** Each case's comparison with another case of its scenario (see CaseComparison). */
  readonly comparisons: readonly ComparisonResult[];
  readonly profiles: readonly ProfileSummary[];
}

export interface ComparisonResult {
  readonly scenario: string;
  readonly case: string;
  readonly against: string;
  readonly metric: string;
  readonly label: string;
  /** The case subject's median / the other case subject's median; undefined when either is missing or below 0. */
  readonly ratio: number | undefined;
  readonly text: string;
  readonly verdict: MetricSummary["verdict"];
}

/** The comparisons the cases ask for, each against the other case of its scenario that it names. */
export function compareCases(cases: readonly CaseResult[]): ComparisonResult[] {
  const subjectMedian = (result: CaseResult | undefined, key: string): number | undefined =>
    result?.metrics.find((metric) => metric.spec.key === key)?.medians[result.subject.id];
  return cases.flatMap((result) => {
    const comparison = result.comparison;
    if (comparison === undefined) return [];
    const other = cases.find((candidate) => candidate.scenario === result.scenario && candidate.id === comparison.against);
    const mine = subjectMedian(result, comparison.metric);
    const theirs = subjectMedian(other, comparison.metric);
    // Both figures are sizes or rates: a negative one (RSS that shrank below its start in a short
    // run) makes no ratio.
    const ratio = mine === undefined || theirs === undefined || !(mine >= 0) || !(theirs > 0) ? undefined : mine / theirs;
    return [
      {
        scenario: result.scenario,
        case: result.id,
        against: comparison.against,
        metric: comparison.metric,
        label: comparison.label,
        ratio,
        text: comparison.text,
        verdict: ratio === undefined ? "n/a" : ratio <= comparison.ratioAtMost ? "pass" : "fail",
      },
    ];
  });
}

/** One line per comparison, for the terminal. */
export function formatComparisons(comparisons: readonly ComparisonResult[]): string {
  return comparisons
    .map((comparison) => `${comparison.scenario} ${comparison.case} / ${comparison.against}: ${comparison.label} ${formatRatio(comparison.ratio)}  ${comparison.text}  ${VERDICT[comparison.verdict]}`.trimEnd())
    .join("\n");
}

export function formatRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? "-" : `${ratio.toFixed(2)}x`;
}

const VERDICT: Record<MetricSummary["verdict"], string> = { pass: "PASS", fail: "FAIL", "n/a": "" };

/**
 * The terminal table: one block per case, headline metrics first, medians over the rounds. Each
 * baseline gets a column of medians and one of ratios (subject / that baseline).
 */
export function formatTable(cases: readonly CaseResult[]): string {
  const rows: string[][] = [];
  /** Columns from index 2 up to this one hold figures (right-aligned). */
  const figureColumns = 2 + 2 * Math.max(1, ...cases.map((result) => result.baselines.length));
  let scenario = "";
  for (const result of cases) {
    if (result.scenario !== scenario) {
      scenario = result.scenario;
      rows.push([`== ${scenario} ==`]);
    }
    const baselines = result.baselines.map((baseline) => baseline.id);
    const pad = (cells: string[]): string[] => [...cells, ...Array.from({ length: figureColumns - 1 - cells.length }, () => "")];
    rows.push([result.id, "metric", ...pad([result.subject.id, ...baselines.flatMap((id) => [id, "ratio"])]), "target", ""]);
    const ordered = [...result.metrics].sort((a, b) => Number(b.spec.headline === true) - Number(a.spec.headline === true));
    for (const metric of ordered) {
      const figures = [
        formatValue(metric.medians[result.subject.id], metric.spec),
        ...baselines.flatMap((id) => [formatValue(metric.medians[id], metric.spec), formatRatio(metric.ratios[id])]),
      ];
      rows.push([
        "",
        `${metric.spec.label}${metric.spec.better === "lower" ? " (lower better)" : ""}`,
        ...pad(figures),
        metric.spec.target?.text ?? "",
        VERDICT[metric.verdict],
      ]);
    }
    const failures = result.runs.filter((run) => !run.ok);
    for (const run of failures) rows.push(["", `! round ${run.round} ${run.target} failed: ${run.error?.split("\n")[0] ?? ""}`]);
    const notes = new Set(result.runs.flatMap((run) => run.notes));
    for (const note of notes) rows.push(["", `note: ${note}`]);
    if (result.baselines.length > 0) rows.push(["", `order (reversed every other round): ${runOrder(result.runs)}`]);
  }
  const widths: number[] = [];
  for (const row of rows) {
    if (row.length < 3) continue;
    row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  }
  return rows
    .map((row) => {
      if (row.length < 3) return row.join("  ");
      return row
        .map((cell, index) => (index >= 2 && index <= figureColumns ? cell.padStart(widths[index] ?? 0) : cell.padEnd(widths[index] ?? 0)))
        .join("  ")
        .trimEnd();
    })
    .join("\n");
}

/** Which target ran when, round by round, e.g. "round 1 server, bare-ws; round 2 bare-ws, server" (runs are kept in the order they ran). */
function runOrder(runs: readonly RunRecord[]): string {
  const rounds = new Map<number, string[]>();
  for (const run of runs) rounds.set(run.round, [...(rounds.get(run.round) ?? []), run.target]);
  return [...rounds].map(([round, targets]) => `round ${round} ${targets.join(", ")}`).join("; ");
}

/** Writes <stamp>-<name>.json and .svg into `dir`; returns their paths. */
export function writeReports(dir: string, name: string, report: BenchReport): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z").replace("T", "-");
  const json = join(dir, `${stamp}-${name}.json`);
  const svg = join(dir, `${stamp}-${name}.svg`);
  writeFileSync(json, `${JSON.stringify(report, (_key, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2)}\n`);
  writeFileSync(svg, renderChart(report));
  return { json, svg };
}
