import type { Endpoint } from "../core/targets.ts";
import type { BenchClient } from "./clients.ts";

/** One process's entry in `GET /stats?detail=peers`. */
interface ProcessStats {
  readonly node_id: string;
  readonly pid: number;
  readonly peers?: readonly string[];
}

/** Which process (node_id) holds each registered fingerprint, from `GET /stats?detail=peers` on `endpoint`. */
export async function peerLocations(endpoint: Endpoint, timeoutMs = 5_000): Promise<{ byFingerprint: Map<string, string>; processes: readonly ProcessStats[] }> {
  const response = await fetch(`http://${endpoint.host}:${endpoint.port}/stats?detail=peers`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET /stats?detail=peers answered ${response.status}`);
  const body = (await response.json()) as { workers?: ProcessStats[] };
  const processes = body.workers ?? [];
  const byFingerprint = new Map<string, string>();
  for (const entry of processes) for (const fingerprint of entry.peers ?? []) byFingerprint.set(fingerprint, entry.node_id);
  return { byFingerprint, processes };
}

/**
 * Where the target put each pair (clients 2k and 2k+1): how many pairs have their two peers in
 * different processes (cluster workers or nodes), and how many processes hold any of them.
 */
export async function pairPlacement(
  endpoint: Endpoint,
  clients: readonly BenchClient[],
): Promise<{ crossedPairs: number; crossedByPair: boolean[]; processes: number; notes: string[] }> {
  const { byFingerprint } = await peerLocations(endpoint);
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
  const notes = unknown > 0 ? [`${unknown} pairs not found in /stats?detail=peers (a process did not answer in time?)`] : [];
  return { crossedPairs, crossedByPair, processes: used.size, notes };
}
