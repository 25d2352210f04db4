import { getAdminJson, type ServerProcess } from "./server-process.ts";

export interface WorkerView {
  node_id: string;
  pid: number;
  connections: Record<string, number>;
  peers: string[];
}

/** The workers as the admin listener's /admin/stats?detail=peers reports them. */
export async function workers(server: ServerProcess): Promise<WorkerView[]> {
  const { body } = await getAdminJson(server, "/admin/stats?detail=peers");
  return body["workers"] as WorkerView[];
}

/** Which worker (node id) holds a registered fingerprint. */
export async function workerOf(server: ServerProcess, fingerprint: string): Promise<string | undefined> {
  return (await workers(server)).find((worker) => worker.peers.includes(fingerprint))?.node_id;
}
