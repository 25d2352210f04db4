import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/**
 * Renders nginx/templates/default.conf.template, the one nginx site of the project.
 *
 * docker compose mounts nginx/templates into the official nginx image, whose entrypoint
 * substitutes the `PEER_*` placeholders from the container environment (envsubst restricted by
 * NGINX_ENVSUBST_FILTER=^PEER_). `substitute()` does the same here, for the tests and for runs
 * without docker, and `renderStandalone()` wraps the site in a minimal nginx.conf that keeps
 * everything nginx writes in one directory, so nginx runs unprivileged:
 *
 *   npx tsx nginx/render.ts --upstream 127.0.0.1:8081 --upstream 127.0.0.1:8082 --listen 8080 --out /tmp/peer-nginx
 *   nginx -e stderr -p /tmp/peer-nginx -c /tmp/peer-nginx/nginx.conf -g 'daemon off;'
 */

export const TEMPLATE_PATH = fileURLToPath(new URL("./templates/default.conf.template", import.meta.url));

/** The placeholders the template uses; compose's nginx service defines each of them. */
export const PLACEHOLDERS = ["PEER_LISTEN", "PEER_RESOLVER", "PEER_UPSTREAM_SERVERS"] as const;
export type SiteVariables = Record<(typeof PLACEHOLDERS)[number], string>;

/** Placeholders are the `$NAME` / `${NAME}` references whose name starts with this prefix. */
export const PLACEHOLDER_PREFIX = "PEER_";

/** Docker's embedded DNS server, reachable from every container on a user-defined network. */
export const DOCKER_DNS = "127.0.0.11";

export interface SiteOptions {
  /** Upstream addresses, `host:port` or `[ipv6]:port`. */
  upstreams: readonly string[];
  /** nginx `listen` value: a port or `address:port`. */
  listen: string;
  /** Re-resolve the upstream host names through `resolver` (nginx >= 1.27.3). Default false. */
  resolve?: boolean;
  /** Default: Docker's embedded DNS, 127.0.0.11. Unused unless `resolve` is set. */
  resolver?: string;
}

const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const LISTEN = /^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/;

/** The `PEER_*` names a template references, sorted. */
export function placeholdersOf(template: string): string[] {
  const names = new Set<string>();
  for (const match of template.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = match[1] as string;
    if (name.startsWith(PLACEHOLDER_PREFIX)) names.add(name);
  }
  return [...names].sort();
}

/**
 * envsubst with an explicit variable list: `$NAME` and `${NAME}` are replaced for the given names
 * only; everything else (nginx's own `$remote_addr`, ...) is left as it is. Throws when the
 * template references a `PEER_*` placeholder that has no value, so a renamed placeholder cannot
 * silently reach nginx.
 */
export function substitute(template: string, variables: Readonly<Record<string, string>>): string {
  const missing = placeholdersOf(template).filter((name) => !Object.hasOwn(variables, name));
  if (missing.length > 0) throw new Error(`nginx template: no value for ${missing.join(", ")}`);
  return template.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (whole, braced?: string, bare?: string) => {
    const name = (braced ?? bare) as string;
    return Object.hasOwn(variables, name) ? (variables[name] as string) : whole;
  });
}

/** The upstream block's `server` lines for the given addresses. */
export function upstreamServers(addresses: readonly string[], resolveNames = false): string {
  if (addresses.length === 0) throw new Error("nginx: at least one upstream address is needed");
  return addresses
    .map((address) => {
      const port = ADDRESS.exec(address)?.[1];
      if (port === undefined || Number(port) < 1 || Number(port) > 65_535) throw new Error(`nginx: bad upstream address ${JSON.stringify(address)} (host:port expected)`);
      return `server ${address}${resolveNames ? " resolve" : ""};`;
    })
    .join(" ");
}

/** The template's variables for the given options. */
export function siteVariables(options: SiteOptions): SiteVariables {
  const port = LISTEN.exec(options.listen)?.[1];
  if (port === undefined || Number(port) < 1 || Number(port) > 65_535) throw new Error(`nginx: bad listen value ${JSON.stringify(options.listen)}`);
  const resolver = options.resolver ?? DOCKER_DNS;
  if (!/^[0-9A-Za-z.:[\]-]+$/.test(resolver)) throw new Error(`nginx: bad resolver ${JSON.stringify(resolver)}`);
  return {
    PEER_LISTEN: options.listen,
    PEER_RESOLVER: resolver,
    PEER_UPSTREAM_SERVERS: upstreamServers(options.upstreams, options.resolve ?? false),
  };
}

/** The rendered site (upstream, map and server blocks), as the nginx container would hold it. */
export function renderSite(options: SiteOptions, template = readFileSync(TEMPLATE_PATH, "utf8")): string {
  return substitute(template, siteVariables(options));
}

export interface Standalone {
  /** Pass to nginx as `-p`. */
  prefix: string;
  /** Pass to nginx as `-c`. */
  configPath: string;
  sitePath: string;
  pidPath: string;
  /** `nginx` arguments that run this configuration in the foreground, logging to stderr. */
  args: string[];
}

/**
 * Writes `dir/nginx.conf` (a minimal main configuration) and `dir/conf.d/peer-server.conf`
 * (the rendered site). Pid file and temp paths live in `dir`; errors go to stderr, no access log.
 * The directory is made traversable so that nginx workers can use it when nginx runs as root.
 */
export function renderStandalone(dir: string, options: SiteOptions): Standalone {
  const prefix = resolve(dir);
  const sitePath = resolve(prefix, "conf.d/peer-server.conf");
  const pidPath = resolve(prefix, "nginx.pid");
  const configPath = resolve(prefix, "nginx.conf");
  const quote = (path: string): string => JSON.stringify(path);
  mkdirSync(resolve(prefix, "conf.d"), { recursive: true });
  mkdirSync(resolve(prefix, "temp"), { recursive: true });
  chmodSync(prefix, 0o755);
  chmodSync(resolve(prefix, "temp"), 0o755);
  writeFileSync(sitePath, renderSite(options));
  writeFileSync(
    configPath,
    [
      "# Generated by nginx/render.ts: the project's nginx site in a self-contained main configuration.",
      "worker_processes 1;",
      `pid ${quote(pidPath)};`,
      "error_log stderr warn;",
      "",
      "events {",
      "    worker_connections 1024;",
      "}",
      "",
      "http {",
      "    access_log off;",
      `    client_body_temp_path ${quote(resolve(prefix, "temp/client_body"))};`,
      `    proxy_temp_path ${quote(resolve(prefix, "temp/proxy"))};`,
      `    fastcgi_temp_path ${quote(resolve(prefix, "temp/fastcgi"))};`,
      `    uwsgi_temp_path ${quote(resolve(prefix, "temp/uwsgi"))};`,
      `    scgi_temp_path ${quote(resolve(prefix, "temp/scgi"))};`,
      `    include ${quote(sitePath)};`,
      "}",
      "",
    ].join("\n"),
  );
  return { prefix, configPath, sitePath, pidPath, args: ["-e", "stderr", "-p", prefix, "-c", configPath, "-g", "daemon off;"] };
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      upstream: { type: "string", multiple: true, default: [] },
      listen: { type: "string", default: "8080" },
      resolve: { type: "boolean", default: false },
      resolver: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || values.upstream.length === 0) {
    process.stdout.write(
      [
        "usage: npx tsx nginx/render.ts --upstream HOST:PORT [--upstream HOST:PORT ...] [--listen [ADDR:]PORT]",
        "                               [--resolve] [--resolver DNS] [--out DIR]",
        "Without --out, prints the rendered site; with --out, writes DIR/nginx.conf for `nginx -p DIR -c DIR/nginx.conf`.",
        "",
      ].join("\n"),
    );
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const options: SiteOptions = { upstreams: values.upstream, listen: values.listen, resolve: values.resolve, resolver: values.resolver };
  if (values.out === undefined) {
    process.stdout.write(renderSite(options));
    return;
  }
  const standalone = renderStandalone(values.out, options);
  process.stdout.write(`wrote ${standalone.configPath}\nrun: nginx ${standalone.args.map((arg) => (/[\s;']/.test(arg) ? `'${arg}'` : arg)).join(" ")}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  }
}
