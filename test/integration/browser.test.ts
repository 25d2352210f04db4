import { randomUUID } from "node:crypto";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, pageState, POLL_MS } from "../helpers/chromium.ts";
import { workerOf } from "../helpers/cluster.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * The SDK's browser bundle, the demo page and the lobby example in real headless Chromium (Debian's
 * package), against real servers: two pages of /demo/?room=X find each other in the private room,
 * open a WebRTC data channel and chat, on one worker and with the two pages on different workers
 * of a cluster; two lobby pages are matched in pairs and connect.
 */

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;
/** A browser test's bound: pages load, register, signal and connect within it, or it fails. */
const BROWSER_TEST_MS = 60_000;

/** What the demo and the lobby pages put on `window` for tests. */
interface PageApi {
  messages: { from: string; text: string }[];
  send(text: string): unknown;
}

let browser: Browser;
const pages: Page[] = [];
/** Each page's console and errors, shown when a test fails. */
const logs = new Map<Page, string[]>();

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => (page.isClosed() ? undefined : page.close())));
});
afterAll(async () => {
  await browser?.close();
});

async function open(url: string): Promise<Page> {
  const page = await browser.newPage();
  pages.push(page);
  const lines: string[] = [];
  logs.set(page, lines);
  page.on("console", (message) => lines.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => lines.push(`pageerror: ${String(error)}`));
  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  return page;
}

/** Waits for `state` on every page, naming each page's console output when one does not get there. */
async function allReach(state: string, ...targets: Page[]): Promise<void> {
  try {
    await Promise.all(targets.map((page) => pageState(page, state)));
  } catch (error) {
    const consoles = targets.map((page, index) => `page ${index}: ${(logs.get(page) ?? []).join(" | ")}`).join("\n");
    throw new Error(`${String(error)}\n${consoles}`);
  }
}

const fingerprintOf = (page: Page): Promise<string> => page.evaluate(() => document.body.dataset["fingerprint"] ?? "");

/** `from` sends `text` on its data channel(s); `to` must receive it. */
async function chat(global: "demo" | "lobby", from: Page, to: Page, text: string): Promise<void> {
  const sent = await from.evaluate((name: string, message: string) => (window as unknown as Record<string, PageApi>)[name]?.send(message), global, text);
  expect(sent).toBeTruthy();
  await to.waitForFunction(
    (name: string, message: string) => (window as unknown as Record<string, PageApi>)[name]?.messages.some((entry) => entry.text === message) === true,
    { timeout: 10_000, polling: POLL_MS },
    global,
    text,
  );
}

describe("the SDK bundle", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("is served at /client/peer-server.js as an ES module that registers with a verified key in the browser", async () => {
    const response = await fetch(`${server.http}/client/peer-server.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/javascript");
    const page = await open(`${server.http}/demo/?room=${unique("probe")}`);
    // A string, not a function: the test runner rewrites import() in the functions it compiles.
    const result = (await page.evaluate(`(async () => {
      const sdk = await import("/client/peer-server.js");
      const client = new sdk.PeerClient();
      const registered = await client.register();
      const identity = await sdk.Identity.generate();
      client.close();
      return { verified: registered.verified, fingerprint: registered.fingerprint, extractable: identity.keyPair.privateKey.extractable };
    })()`)) as { verified: boolean; fingerprint: string; extractable: boolean };
    expect(result).toMatchObject({ verified: true, extractable: false });
    expect(result.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it("two tabs of /demo/?room=X meet in the room, open a data channel and chat", { timeout: BROWSER_TEST_MS }, async () => {
    const room = unique("room");
    const first = await open(`${server.http}/demo/?room=${room}`);
    const second = await open(`${server.http}/demo/?room=${room}`);
    await allReach("open", first, second);
    expect(await fingerprintOf(first)).not.toBe(await fingerprintOf(second));
    await chat("demo", first, second, "hello from the first tab");
    await chat("demo", second, first, "and back from the second");
  });

  it("two lobby pages are matched in pairs and connect to each other", { timeout: BROWSER_TEST_MS }, async () => {
    const lobby = unique("lobby");
    const first = await open(`${server.http}/examples/lobby/?lobby=${lobby}&auto=1`);
    const second = await open(`${server.http}/examples/lobby/?lobby=${lobby}&auto=1`);
    await allReach("open", first, second);
    const partnerOf = (page: Page): Promise<string | undefined> => page.evaluate(() => document.body.dataset["partner"]);
    expect(await partnerOf(first)).toBe(await fingerprintOf(second));
    expect(await partnerOf(second)).toBe(await fingerprintOf(first));
    await chat("lobby", first, second, "good game");
  });
});

describe("WebRTC links with the server's ICE servers", () => {
  const STUN = "stun:127.0.0.1:3478";
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ config: { stun_urls: [STUN] } });
  });
  afterAll(async () => {
    await server.stop();
  });

  /** A page of the server's origin with a registered SDK client in `namespace`, its links and the kinds of the tracks it received. */
  async function peerPage(namespace: string): Promise<{ page: Page; fingerprint: string }> {
    const page = await open(`${server.http}/health`);
    const fingerprint = (await page.evaluate(`(async () => {
      const sdk = await import("/client/peer-server.js");
      const client = new sdk.PeerClient();
      await client.register();
      await client.join(${JSON.stringify(namespace)});
      const rtc = new sdk.PeerConnections(client);
      const tracks = [];
      rtc.on("link", (link) => link.on("track", (event) => tracks.push(event.track.kind)));
      window.peer = { client, rtc, tracks };
      return client.fingerprint;
    })()`)) as string;
    return { page, fingerprint };
  }

  it("a link takes registered.ice_servers, and a media track added on one side arrives on the other", { timeout: BROWSER_TEST_MS }, async () => {
    const namespace = unique("media");
    const sender = await peerPage(namespace);
    const receiver = await peerPage(namespace);
    const iceServers = (await sender.page.evaluate(`(async () => {
      const link = window.peer.rtc.connect(${JSON.stringify(receiver.fingerprint)});
      const canvas = document.createElement("canvas");
      canvas.getContext("2d").fillRect(0, 0, 16, 16);
      const stream = canvas.captureStream(5);
      link.addTrack(stream.getVideoTracks()[0], stream);
      return link.pc.getConfiguration().iceServers;
    })()`)) as { urls: string[] }[];
    expect(iceServers).toEqual([expect.objectContaining({ urls: [STUN] })]);
    await receiver.page.waitForFunction(`window.peer.tracks.includes("video")`, { timeout: 15_000, polling: POLL_MS });
  });

  it("links both sides open at once (their offers cross) connect, pair after pair", { timeout: 2 * BROWSER_TEST_MS }, async () => {
    const left = await open(`${server.http}/health`);
    const right = await open(`${server.http}/health`);
    /** A new registered client in `namespace` on `page`, kept as window.pair; resolves with its fingerprint. */
    const newClient = (page: Page, namespace: string): Promise<string> =>
      page.evaluate(`(async () => {
        const sdk = await import("/client/peer-server.js");
        window.pair?.client.close();
        const client = new sdk.PeerClient();
        await client.register();
        await client.join(${JSON.stringify(namespace)});
        window.pair = { client, rtc: new sdk.PeerConnections(client) };
        return client.fingerprint;
      })()`) as Promise<string>;
    /** Connects to `remote` with a negotiated channel; resolves once the channel is open. */
    const connectTo = (page: Page, remote: string): Promise<unknown> =>
      page.evaluate(`new Promise((resolve, reject) => {
        const channel = window.pair.rtc.connect(${JSON.stringify(remote)}).channel("pair", { id: 0 });
        channel.onopen = () => resolve(true);
        setTimeout(() => reject(new Error("the channel did not open within 10 s")), 10000);
      })`);
    // Each side offers as soon as it connects, so the offers cross and one side rolls its own back.
    for (let pair = 0; pair < 6; pair++) {
      const namespace = unique(`crossing-${pair}`);
      const [leftFingerprint, rightFingerprint] = await Promise.all([newClient(left, namespace), newClient(right, namespace)]);
      await expect(Promise.all([connectTo(left, rightFingerprint), connectTo(right, leftFingerprint)]), `pair ${pair}`).resolves.toEqual([true, true]);
    }
  });
});

describe("the demo on a 2-worker cluster", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ env: { PEER_WORKERS: "2" } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("two tabs on different workers meet in the room, open a data channel and chat", { timeout: 2 * BROWSER_TEST_MS }, async () => {
    const room = unique("room");
    const first = await open(`${server.http}/demo/?room=${room}`);
    await allReach("registered", first);
    const firstWorker = await workerOf(server, await fingerprintOf(first));
    expect(firstWorker).toBeDefined();
    // The router sends a new connection to the worker with the fewest: a tab that landed on the
    // first one's worker anyway is closed and another opened in its place.
    let second: Page | undefined;
    for (let attempt = 0; attempt < 6 && second === undefined; attempt++) {
      const candidate = await open(`${server.http}/demo/?room=${room}`);
      await allReach("open", candidate);
      if ((await workerOf(server, await fingerprintOf(candidate))) !== firstWorker) second = candidate;
      else await candidate.close();
    }
    if (second === undefined) throw new Error("no tab landed on the other worker");
    await allReach("open", first);
    await chat("demo", first, second, "across workers");
    await chat("demo", second, first, "and back");
  });
});
