import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { freePort } from "./ports.ts";

/** A private coturn `turnserver` on loopback with the TURN REST scheme (`use-auth-secret`). */
export interface TurnServer {
  port: number;
  secret: string;
  /** Asks for a relay allocation with this username and credential (coturn's own client); true if granted. */
  allocate(username: string, credential: string): Promise<boolean>;
  stop(): Promise<void>;
}

const SERVER = "/usr/bin/turnserver";
const CLIENT = "/usr/bin/turnutils_uclient";

/** Starts turnserver; throws (never skips) when coturn is not installed. */
export async function startTurnServer(secret: string): Promise<TurnServer> {
  for (const binary of [SERVER, CLIENT]) {
    if (!existsSync(binary)) throw new Error(`${binary} not found: install the Debian package coturn`);
  }
  const port = await freePort();
  const child: ChildProcess = spawn(
    SERVER,
    [
      "-n",
      "--listening-ip=127.0.0.1",
      "--relay-ip=127.0.0.1",
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${secret}`,
      "--realm=peer-server.test",
      "--no-tls",
      "--no-dtls",
      "--no-cli",
      "--allow-loopback-peers",
      "--log-file=stdout",
      "--simple-log",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`turnserver did not start:\n${output.join("")}`)), 10_000);
    const check = (): void => {
      if (output.join("").includes("Total General servers")) {
        clearTimeout(timer);
        resolve();
      } else setTimeout(check, 50);
    };
    check();
    child.once("exit", (code) => reject(new Error(`turnserver exited with ${String(code)}:\n${output.join("")}`)));
  });
  return {
    port,
    secret,
    allocate: (username, credential) =>
      new Promise((resolve) => {
        execFile(CLIENT, ["-p", String(port), "-u", username, "-w", credential, "-n", "1", "-y", "-X", "127.0.0.1"], { timeout: 15_000 }, (error) => resolve(error === null));
      }),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
