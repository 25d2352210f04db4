/** A worker as placement sees it: whether it takes connections, and how many it holds. */
export interface PlacementCandidate {
  readonly ready: boolean;
  readonly load: number;
}

/** Where a new long-lived connection goes, and the machine's load before it (for max_peers). */
export interface PlacementChoice<T> {
  readonly to: T;
  readonly machineLoad: number;
}

/** Below this average load a worker may hold nothing above the least loaded: placement is exact. */
const EXACT_BELOW = 100;

/**
 * The worker a new long-lived connection goes to: the one that accepted it, unless that one is not
 * ready or holds more than its share, that is more than the least loaded ready worker plus a tenth
 * of the average load (while the average is under EXACT_BELOW, anything more than the least
 * loaded); then the least loaded ready worker. The slack keeps most connections where the kernel
 * put them (moving one costs two hand-offs through the primary) while no worker drifts far from
 * the others; a few connections are spread as the least-loaded rule spreads them (a client
 * retrying until it lands on another worker does).
 */
export function placeConnection<T extends PlacementCandidate>(landed: T, workers: Iterable<T>): PlacementChoice<T> {
  let least: T | undefined;
  let machineLoad = 0;
  let ready = 0;
  for (const worker of workers) {
    if (!worker.ready) continue;
    machineLoad += worker.load;
    ready++;
    if (least === undefined || worker.load < least.load) least = worker;
  }
  if (least === undefined) return { to: landed, machineLoad };
  const average = machineLoad / ready;
  const slack = average < EXACT_BELOW ? 0 : Math.floor(average / 10);
  return { to: landed.ready && landed.load <= least.load + slack ? landed : least, machineLoad };
}
