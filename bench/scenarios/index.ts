import type { Scenario } from "../core/scenario.ts";
import { broadcastScenario } from "./broadcast.ts";
import { churnScenario } from "./churn.ts";
import { clusterScenario } from "./cluster.ts";
import { connectScenario } from "./connect.ts";
import { dialectsScenario } from "./dialects.ts";
import { hundredkScenario } from "./hundredk.ts";
import { matchScenario } from "./match.ts";
import { memoryScenario } from "./memory.ts";
import { metricsScenario } from "./metrics.ts";
import { nodesScenario } from "./nodes.ts";
import { signalScenario } from "./signal.ts";
import { stressScenario } from "./stress.ts";

/**
 * Every scenario, in the order `all` runs them. To add one, write bench/scenarios/<name>.ts
 * exporting a Scenario and list it here.
 */
export const SCENARIOS: readonly Scenario[] = [connectScenario, signalScenario, broadcastScenario, memoryScenario, matchScenario, clusterScenario, churnScenario, stressScenario, nodesScenario, dialectsScenario];

/**
 * Scenarios run only when named: `hundredk` holds 100,000 peers and takes the whole machine;
 * `metrics` measures the server against itself with metrics on and off.
 */
export const ON_DEMAND_SCENARIOS: readonly Scenario[] = [hundredkScenario, metricsScenario];

/** Resolves a command-line name: one scenario, or `all`. */
export function scenariosNamed(name: string): Scenario[] | undefined {
  if (name === "all") return [...SCENARIOS];
  const scenario = [...SCENARIOS, ...ON_DEMAND_SCENARIOS].find((candidate) => candidate.name === name);
  return scenario === undefined ? undefined : [scenario];
}
