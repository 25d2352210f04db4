import { describe, expect, it } from "vitest";
import { compareCases, formatComparisons } from "../../bench/core/report.ts";
import type { CaseResult, MetricSummary } from "../../bench/core/runner.ts";
import type { CaseComparison, MetricSpec } from "../../bench/core/scenario.ts";

const growth: MetricSpec = { key: "kbPerPeerGrowth", label: "server RSS growth per peer", unit: "KB", better: "lower", digits: 1 };

function caseResult(id: string, subject: string, median: number, comparison?: CaseComparison): CaseResult {
  const metric: MetricSummary = { spec: growth, values: { [subject]: [median] }, medians: { [subject]: median }, ratio: undefined, ratios: {}, roundRatios: [], verdict: "n/a" };
  return {
    scenario: "hundredk",
    id,
    title: id,
    subject: { id: subject, description: subject },
    baselines: [],
    job: { kind: "crowd", params: {} } as unknown as CaseResult["job"],
    rounds: 1,
    pinning: { target: null, load: null },
    runs: [],
    metrics: [metric],
    ...(comparison === undefined ? {} : { comparison }),
  };
}

const against = (ratioAtMost: number): CaseComparison => ({ metric: "kbPerPeerGrowth", against: "one-process", label: "growth, cluster / one process", ratioAtMost, text: `<= ${ratioAtMost}x` });

describe("bench case comparisons", () => {
  it("holds one case's subject median against another case's, with the target's verdict", () => {
    const results = [caseResult("crowd", "6-workers", 11.1, against(1.5)), caseResult("one-process", "1-process", 7.4)];
    const [comparison] = compareCases(results);
    expect(comparison).toMatchObject({ case: "crowd", against: "one-process", verdict: "pass" });
    expect(comparison?.ratio).toBeCloseTo(1.5, 5);
    expect(compareCases([caseResult("crowd", "6-workers", 11.1, against(1.4)), results[1] as CaseResult])[0]?.verdict).toBe("fail");
    expect(formatComparisons(compareCases(results))).toBe("hundredk crowd / one-process: growth, cluster / one process 1.50x  <= 1.5x  PASS");
  });

  it("gives no verdict when the other case did not run, or measured no growth", () => {
    const [alone] = compareCases([caseResult("crowd", "6-workers", 11.1, against(1.5))]);
    expect(alone).toMatchObject({ ratio: undefined, verdict: "n/a" });
    const [shrank] = compareCases([caseResult("crowd", "6-workers", 11.1, against(1.5)), caseResult("one-process", "1-process", -0.2)]);
    expect(shrank).toMatchObject({ ratio: undefined, verdict: "n/a" });
  });
});
