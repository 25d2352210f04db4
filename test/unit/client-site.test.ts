import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLIENT_BUNDLE_PATH, loadClientSite, projectRoot } from "../../src/http/client-site.ts";
import { ROOT } from "../helpers/server-process.ts";

/** A project folder with the given files (path -> content). */
function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "peer-client-site-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  roots.push(root);
  return root;
}
const roots: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** Serves the site of `root` on a real HTTP server (404 "next" for what it leaves alone); returns its base URL. */
async function serve(root: string): Promise<string> {
  const site = loadClientSite(root);
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?", 1)[0] ?? "/";
    if (!site(path, request, response)) response.writeHead(404, { "x-next": "1" }).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the client site: the SDK bundle, the demo and the examples, read once at start", () => {
  it("serves the bundle, the demo at /demo/ and each example folder at /examples/<name>/, with their types", async () => {
    const root = project({
      "client/dist/peer-server.js": "export const sdk = 1;",
      "examples/demo/index.html": "<p>demo</p>",
      "examples/demo/demo.js": "import '/client/peer-server.js';",
      "examples/lobby/index.html": "<p>lobby</p>",
      "examples/lobby/lobby.js": "// lobby",
      "examples/lobby/notes.txt": "not served",
    });
    const base = await serve(root);
    const bundle = await fetch(`${base}${CLIENT_BUNDLE_PATH}`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await bundle.text()).toBe("export const sdk = 1;");
    expect(await (await fetch(`${base}/demo/`)).text()).toBe("<p>demo</p>");
    expect((await fetch(`${base}/demo/demo.js`)).headers.get("content-type")).toContain("text/javascript");
    expect(await (await fetch(`${base}/examples/lobby/`)).text()).toBe("<p>lobby</p>");
    expect((await fetch(`${base}/examples/lobby/notes.txt`)).headers.get("x-next")).toBe("1");
    const redirect = await fetch(`${base}/demo`, { redirect: "manual" });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get("location")).toBe("/demo/");
    const head = await fetch(`${base}/demo/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String("<p>demo</p>".length));
  });

  it("reads the files once: a change on disk after start is not served", async () => {
    const root = project({ "examples/demo/index.html": "first" });
    const base = await serve(root);
    writeFileSync(join(root, "examples/demo/index.html"), "second");
    expect(await (await fetch(`${base}/demo/`)).text()).toBe("first");
  });

  it("answers 404 with what to run when the bundle was not built, and leaves other paths alone", async () => {
    const base = await serve(project({}));
    const missing = await fetch(`${base}${CLIENT_BUNDLE_PATH}`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("npm run build:client");
    for (const path of ["/demo/", "/client/../package.json", "/examples/x/"]) expect((await fetch(`${base}${path}`)).headers.get("x-next"), path).toBe("1");
  });

  it("finds the project folder from src/http and from the compiled dist/src/http alike", () => {
    expect(projectRoot(join(ROOT, "src", "http"))).toBe(ROOT);
    expect(projectRoot(join(ROOT, "dist", "src", "http"))).toBe(ROOT);
  });
});
