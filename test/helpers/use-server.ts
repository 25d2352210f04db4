import { afterAll, afterEach, beforeAll } from "vitest";
import { closeAll, connect, registeredPeer, type TestPeer, type Transport } from "./peers.ts";
import { startServer, type ServerProcess, type StartOptions } from "./server-process.ts";

export interface ServerFixture {
  /** The running server (started in beforeAll). */
  readonly server: ServerProcess;
  /** Closes `peer` after the current test; returns it. */
  track<T extends TestPeer>(peer: T): T;
  /** Connects without registering; closed after the test. */
  connect(transport: Transport): Promise<TestPeer>;
  /** Connects and registers (optionally with an alias/key, optionally joining a namespace); closed after the test. */
  peer(transport: Transport, options?: Parameters<typeof registeredPeer>[2]): Promise<TestPeer>;
}

export interface UseServerOptions extends StartOptions {
  /** Runs after each test once its peers are closed, e.g. to wait until the server has seen every close. */
  afterPeersClosed?: (server: ServerProcess) => Promise<void>;
}

/**
 * The usual shape of an integration test file: one server for the file (beforeAll / afterAll), and
 * every peer a test opens closed after that test. Registers those hooks where it is called.
 */
export function useServer(options: UseServerOptions = {}): ServerFixture {
  const { afterPeersClosed, ...start } = options;
  let server: ServerProcess | undefined;
  let open: TestPeer[] = [];

  beforeAll(async () => {
    server = await startServer(start);
  });
  afterEach(async () => {
    closeAll(open);
    open = [];
    if (afterPeersClosed !== undefined && server !== undefined) await afterPeersClosed(server);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const fixture: ServerFixture = {
    get server(): ServerProcess {
      if (server === undefined) throw new Error("the server is not running (beforeAll has not started it, or it failed to start)");
      return server;
    },
    track(peer) {
      open.push(peer);
      return peer;
    },
    async connect(transport) {
      return fixture.track(await connect(fixture.server, transport));
    },
    async peer(transport, peerOptions = {}) {
      return fixture.track(await registeredPeer(fixture.server, transport, peerOptions));
    },
  };
  return fixture;
}
