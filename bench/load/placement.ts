import type { Endpoint } from "../core/targets.ts";
import type { BenchClient } from "./clients.ts";

/** One process's entry in the admin API's `GET /admin/stats?detail=peers`. */
interface ProcessStats {
  readonly node_id: string;
  readonly pid: number;
  readonly peers?: readonly string[];
}

/**
 * Which process (node_id) holds each registered fingerprint, from the admin API's
 * `GET /admin/stats?detail=peers` on `endpoint`'s admin listener (the public /stats names no
 * peer). Rejects when the target serves no admin listener: it runs one with metrics_enabled
 * (`BENCH_SERVER_OPTIONS='{"metrics_enabled":true}'`).
 */
export async function peerLocations(endpoint: Endpoint, timeoutMs = 5_000): Promise<{ byFingerprint: Map<string, string>; processes: readonly ProcessStats[] }> {
  if (endpoint.admin === undefined) throw new Error(`the target serves no admin listener, which tells where peers are (BENCH_SERVER_OPTIONS='{"metrics_enabled":true}')`);
  const response = await fetch(`http://${endpoint.host}:${endpoint.admin}/admin/stats?detail=peers`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET /admin/stats?detail=peers answered ${response.status}`);
  const body = (await response.json()) as { workers?: ProcessStats[] };
  const processes = body.workers ?? [];
  const byFingerprint = new Map<string, string>();
  for (const entry of processes) for (const fingerprint of entry.peers ?? []) byFingerprint.set(fingerprint, entry.node_id);
  return { byFingerprint, processes };
}

/**
 * Where the target put each pair (clients 2k and 2k+1): how many pairs have their two peers in
 * different processes (cluster workers or nodes), and how many processes hold any of them.
 * Undefined, with a note, when the target cannot say (no admin listener).
 */
export async function pairPlacement(
  endpoint: Endpoint,
  clients: readonly BenchClient[],
): Promise<{ crossedPairs: number; crossedByPair: boolean[]; processes: number; notes: string[] } | { unknown: string }> {
  let byFingerprint: Map<string, string>;
  try {
    ({ byFingerprint } = await peerLocations(endpoint));
  } catch (error) {
    return { unknown: `pairs' placement not measured: ${(error as Error).message}` };
  }
  let crossedPairs = 0;
  let unknown = 0;
  const crossedByPair: boolean[] = [];
  const used = new Set<string>();
  for (let index = 0; index + 1 < clients.length; index += 2) {
    const a = byFingerprint.get((clients[index] as BenchClient).fingerprint);
    const b = byFingerprint.get((clients[index + 1] as BenchClient).fingerprint);
    crossedByPair.push(a !== undefined && b !== undefined && a !== b);
    if (a === undefined || b === undefined) {
      unknown++;
      continue;
    }
    used.add(a).add(b);
    if (a !== b) crossedPairs++;
  }
  const notes = unknown > 0 ? [`${unknown} pairs not found in /admin/stats?detail=peers (a process did not answer in time?)`] : [];
  return { crossedPairs, crossedByPair, processes: used.size, notes };
}
