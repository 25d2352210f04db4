import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exited, freePort, spawnPinned, stopGroup, waitReady } from "./processes.ts";
import { HOST, ROOT, STOP_DEADLINE_MS, checkedStop, startNodeService, type TargetSpec } from "./targets.ts";

/** The bench's bare relay of the three dialects' frames (bench/baselines/bare-dialects.ts). */
export function bareDialectsTarget(): TargetSpec {
  return {
    id: "bare-dialects",
    description: "bare ws relay of the dialects' frames (bench/baselines/bare-dialects.ts)",
    async start(context) {
      const service = await startNodeService({
        entry: join(ROOT, "bench", "baselines", "bare-dialects.ts"),
        args: ["--host", HOST, "--port", "0"],
        cpus: context.cpus,
        profileDir: context.profileDir,
      });
      return { endpoints: [{ host: HOST, port: service.port }], pids: [service.child.pid as number], output: service.output, died: service.died, stop: () => service.stop() };
    },
  };
}

/** The PeerPigeon release measured, as published on the npm registry. */
export const PEERPIGEON_VERSION = "1.1.3";

/**
 * Where the bench installs PeerPigeon: outside the source tree, so that it is never part of the
 * project's dependencies (its @koush/wrtc would make `npm ci` download native binaries).
 */
const PEERPIGEON_DIR = join(tmpdir(), "peer-server-bench", `peerpigeon-${PEERPIGEON_VERSION}`);
const INSTALL_TIMEOUT_MS = 300_000;

let installation: Promise<{ startScript: string; wsVersion: string }> | undefined;

function installedVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(PEERPIGEON_DIR, "node_modules", name, "package.json"), "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Installs peerpigeon@PEERPIGEON_VERSION into the cache folder once (`npm install --prefix <dir>
 * --ignore-scripts --no-save`: no install scripts, so no native WebRTC build; its signaling server
 * does not need it), and resolves with its standalone server's entry.
 */
export function installPeerPigeon(): Promise<{ startScript: string; wsVersion: string }> {
  installation ??= (async () => {
    const startScript = join(PEERPIGEON_DIR, "node_modules", "peerpigeon", "server", "start.js");
    if (installedVersion("peerpigeon") !== PEERPIGEON_VERSION || !existsSync(startScript)) {
      const npm = process.platform === "win32" ? "npm.cmd" : "npm";
      const args = ["install", "--prefix", PEERPIGEON_DIR, "--ignore-scripts", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", `peerpigeon@${PEERPIGEON_VERSION}`];
      await new Promise<void>((resolve, reject) => {
        execFile(npm, args, { timeout: INSTALL_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024 }, (error, _stdout, stderr) => {
          if (error === null) resolve();
          else reject(new Error(`npm ${args.join(" ")} failed: ${error.message}\n${stderr.slice(-2_000)}`));
        });
      });
      if (installedVersion("peerpigeon") !== PEERPIGEON_VERSION || !existsSync(startScript)) throw new Error(`peerpigeon@${PEERPIGEON_VERSION} is not in ${PEERPIGEON_DIR} after npm install`);
    }
    return { startScript, wsVersion: installedVersion("ws") ?? "?" };
  })();
  // A failed attempt may be retried by the next run.
  installation.catch(() => (installation = undefined));
  return installation;
}

/**
 * PeerPigeon's own JavaScript signaling server (`server/start.js` of the npm package: a
 * PeerPigeonServer, not a hub) on 127.0.0.1 and a free port, pinned like any target. It serves
 * WebSocket upgrades on every path, so the clients' `/pigeon?peerId=` reaches it unchanged.
 */
export function peerpigeonTarget(): TargetSpec {
  return {
    id: "peerpigeon-js",
    description: `PeerPigeon ${PEERPIGEON_VERSION}'s own server (npm peerpigeon, server/start.js, non-hub), installed in ${PEERPIGEON_DIR}`,
    async start(context) {
      const { startScript } = await installPeerPigeon();
      const port = await freePort(HOST);
      const nodeArgs = context.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${context.profileDir}`];
      const child = spawnPinned(context.cpus, process.execPath, [...nodeArgs, startScript], {
        cwd: join(PEERPIGEON_DIR, "node_modules", "peerpigeon"),
        env: { ...process.env, HOST, PORT: String(port), MAX_CONNECTIONS: "100000" },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group, stopped as a whole like every target's.
        detached: true,
      });
      const output: string[] = [];
      let stopping = false;
      const died = exited(child).then(() => (stopping ? new Promise<string>(() => undefined) : `PeerPigeon's server exited unexpectedly (${child.exitCode ?? child.signalCode}):\n${output.slice(-20).join("\n")}`));
      try {
        // It answers GET /health once listening.
        await waitReady(child, HOST, port, output);
      } catch (error) {
        stopping = true;
        await stopGroup(child, STOP_DEADLINE_MS);
        throw error;
      }
      return {
        endpoints: [{ host: HOST, port }],
        pids: [child.pid as number],
        output,
        died,
        async stop() {
          stopping = true;
          return checkedStop("PeerPigeon's server", await stopGroup(child, STOP_DEADLINE_MS));
        },
      };
    },
  };
}
