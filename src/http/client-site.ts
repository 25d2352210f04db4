import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";

/**
 * The browser side served beside the protocol: the client SDK's browser bundle at
 * `/client/peer-server.js`, the demo page at `/demo/` and the examples at `/examples/<name>/`.
 * Every file is read once, when the server starts, and answered from memory; nothing else on disk
 * is reachable, whatever the path asks for.
 */

/** Where the SDK's browser bundle is served. */
export const CLIENT_BUNDLE_PATH = "/client/peer-server.js";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

interface StaticFile {
  body: Buffer;
  type: string;
}

/** Answers GET and HEAD of the served paths; false for any other path, which it leaves to the next handler. */
export type SiteHandler = (path: string, request: IncomingMessage, response: ServerResponse) => boolean;

/**
 * Loads the site from the project's folder `root` (the one holding package.json): the bundle from
 * client/dist (built by `npm run build:client`), the demo from examples/demo, each other folder of
 * examples/ at /examples/<folder>/. A bundle that was not built is answered 404 with what to run.
 */
export function loadClientSite(root: string): SiteHandler {
  const files = new Map<string, StaticFile>();
  const bundle = join(root, "client", "dist", "peer-server.js");
  if (existsSync(bundle)) files.set(CLIENT_BUNDLE_PATH, { body: readFileSync(bundle), type: TYPES[".js"] as string });
  const examples = join(root, "examples");
  if (existsSync(examples)) {
    for (const entry of readdirSync(examples, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const prefix = entry.name === "demo" ? "/demo/" : `/examples/${entry.name}/`;
      for (const file of readdirSync(join(examples, entry.name))) {
        const type = TYPES[extname(file)];
        if (type === undefined) continue;
        files.set(file === "index.html" ? prefix : `${prefix}${file}`, { body: readFileSync(join(examples, entry.name, file)), type });
      }
    }
  }

  return (path, request, response) => {
    const file = files.get(path);
    if (file !== undefined) {
      response.writeHead(200, {
        "content-type": file.type,
        "content-length": file.body.length,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
      response.end(request.method === "HEAD" ? undefined : file.body);
      return true;
    }
    if (path === CLIENT_BUNDLE_PATH) {
      text(response, 404, "the client SDK is not built: run `npm run build:client` (npm start and npm run build do) and restart the server\n");
      return true;
    }
    // A page's relative imports need its folder's trailing slash.
    if (files.has(`${path}/`)) {
      response.writeHead(301, { location: `${path}/`, "content-length": 0 });
      response.end();
      return true;
    }
    return false;
  };
}

function text(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  response.end(body);
}

/**
 * The project's folder: the nearest one above this module whose package.json is peer-server's,
 * whether it runs from src/ (tsx) or compiled from dist/src/.
 */
export function projectRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown };
      if (manifest.name === "peer-server") return dir;
    } catch {
      // no package.json here, or not one we can read: look further up
    }
    if (dirname(dir) === dir) throw new Error(`no peer-server package.json above ${from}`);
  }
}
