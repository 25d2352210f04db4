import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/**
 * Renders the project's nginx site: the templates in nginx/templates/ (the site with its plain
 * server, and the proxy settings and locations every server includes) and, when TLS is asked for,
 * those in nginx/tls/ (a second server, with `ssl`).
 *
 * docker compose mounts nginx/templates into the official nginx image, whose entrypoint renders
 * every `*.template` below /etc/nginx/templates into /etc/nginx/conf.d/ (the same relative path,
 * without the suffix), substituting the `PEER_*` placeholders from the container environment
 * (envsubst restricted by NGINX_ENVSUBST_FILTER=^PEER_); docker-compose.tls.yml gives it a
 * template directory that holds nginx/tls's template too. `renderConfD()` does the same here, for
 * the tests and for runs without docker, and `renderStandalone()` writes that conf.d/ beside a
 * minimal nginx.conf that, like the image's, includes `conf.d/*.conf`, and keeps everything nginx
 * writes in one directory, so nginx runs unprivileged:
 *
 *   npx tsx nginx/render.ts --upstream 127.0.0.1:8081 --upstream 127.0.0.1:8082 --listen 8080 --out /tmp/peer-nginx
 *   nginx -e stderr -p /tmp/peer-nginx -c /tmp/peer-nginx/nginx.conf -g 'daemon off;'
 */

/** The templates rendered for every site. */
export const TEMPLATES_DIR = fileURLToPath(new URL("./templates", import.meta.url));
/** The templates rendered only with TLS. */
export const TLS_TEMPLATES_DIR = fileURLToPath(new URL("./tls", import.meta.url));
/** The site: upstream, map and the plain server. */
export const TEMPLATE_PATH = join(TEMPLATES_DIR, "default.conf.template");
/** What the official image renders: files whose name ends with this (NGINX_ENVSUBST_TEMPLATE_SUFFIX). */
export const TEMPLATE_SUFFIX = ".template";

/** The placeholders of the templates in nginx/templates; compose's nginx service defines each of them. */
export const PLACEHOLDERS = ["PEER_LISTEN", "PEER_RESOLVER", "PEER_UPSTREAM_SERVERS"] as const;
export type SiteVariables = Record<(typeof PLACEHOLDERS)[number], string>;

/** The placeholders of the TLS templates in nginx/tls; docker-compose.tls.yml defines each of them. */
export const TLS_PLACEHOLDERS = ["PEER_TLS_CERT", "PEER_TLS_KEY", "PEER_TLS_LISTEN"] as const;
export type TlsVariables = Record<(typeof TLS_PLACEHOLDERS)[number], string>;

/** Placeholders are the `$NAME` / `${NAME}` references whose name starts with this prefix. */
export const PLACEHOLDER_PREFIX = "PEER_";

/** Docker's embedded DNS server, reachable from every container on a user-defined network. */
export const DOCKER_DNS = "127.0.0.11";

/** The TLS server's listen address and its PEM files. */
export interface TlsOptions {
  /** nginx `listen` value: a port or `address:port` (`ssl` is added by the template). */
  listen: string;
  /** Absolute path of the PEM certificate chain, leaf first. */
  cert: string;
  /** Absolute path of the certificate's PEM private key. */
  key: string;
}

export interface SiteOptions {
  /** Upstream addresses, `host:port` or `[ipv6]:port`. */
  upstreams: readonly string[];
  /** nginx `listen` value: a port or `address:port`. */
  listen: string;
  /** Re-resolve the upstream host names through `resolver` (nginx >= 1.27.3). Default false. */
  resolve?: boolean;
  /** Default: Docker's embedded DNS, 127.0.0.11. Unused unless `resolve` is set. */
  resolver?: string;
  /** Also render the TLS server (nginx/tls). Default: none, the site has its plain server only. */
  tls?: TlsOptions;
}

/** One rendered file, named by its path relative to conf.d/. */
export interface RenderedFile {
  readonly name: string;
  readonly text: string;
}

const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const LISTEN = /^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/;
/** A path nginx reads unquoted: nothing that would end the directive, open a block or name a variable. */
const PATH = /^[^\s;'"{}$#\\]+$/;

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

function checkListen(listen: string): string {
  const port = LISTEN.exec(listen)?.[1];
  if (port === undefined || Number(port) < 1 || Number(port) > 65_535) throw new Error(`nginx: bad listen value ${JSON.stringify(listen)}`);
  return listen;
}

/** The site templates' variables for the given options. */
export function siteVariables(options: SiteOptions): SiteVariables {
  const resolver = options.resolver ?? DOCKER_DNS;
  if (!/^[0-9A-Za-z.:[\]-]+$/.test(resolver)) throw new Error(`nginx: bad resolver ${JSON.stringify(resolver)}`);
  return {
    PEER_LISTEN: checkListen(options.listen),
    PEER_RESOLVER: resolver,
    PEER_UPSTREAM_SERVERS: upstreamServers(options.upstreams, options.resolve ?? false),
  };
}

/** The TLS templates' variables for the given options. */
export function tlsVariables(tls: TlsOptions): TlsVariables {
  for (const [what, path] of [["certificate", tls.cert], ["key", tls.key]] as const) {
    // nginx reads a relative path from its prefix directory, which is rarely what was meant.
    if (!isAbsolute(path) || !PATH.test(path)) throw new Error(`nginx: bad TLS ${what} path ${JSON.stringify(path)} (an absolute path without spaces, quotes, ";", "{", "}", "#" or "$" expected)`);
  }
  return { PEER_TLS_CERT: tls.cert, PEER_TLS_KEY: tls.key, PEER_TLS_LISTEN: checkListen(tls.listen) };
}

/** The `*.template` files below `dir`, as paths relative to it, sorted: what the image renders from it. */
export function templatesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(TEMPLATE_SUFFIX) && statSync(join(dir, name)).isFile())
    .sort();
}

/** Renders every template below `dir` as the image does: conf.d/<relative path without the suffix>. */
export function renderTemplates(dir: string, variables: Readonly<Record<string, string>>): RenderedFile[] {
  return templatesIn(dir).map((name) => ({ name: name.slice(0, -TEMPLATE_SUFFIX.length), text: substitute(readFileSync(join(dir, name), "utf8"), variables) }));
}

/**
 * Everything the nginx container's conf.d/ would hold for these options: nginx/templates rendered
 * with the site's variables and, with `tls`, nginx/tls rendered with the TLS variables as well.
 */
export function renderConfD(options: SiteOptions): RenderedFile[] {
  const site = siteVariables(options);
  const files = renderTemplates(TEMPLATES_DIR, site);
  if (options.tls !== undefined) files.push(...renderTemplates(TLS_TEMPLATES_DIR, { ...site, ...tlsVariables(options.tls) }));
  return files;
}

export interface Standalone {
  /** Pass to nginx as `-p`. */
  prefix: string;
  /** Pass to nginx as `-c`. */
  configPath: string;
  /** conf.d/default.conf: the site with its plain server. */
  sitePath: string;
  /** Every file written into conf.d/, absolute paths (the TLS server's among them when asked for). */
  files: string[];
  pidPath: string;
  /** `nginx` arguments that run this configuration in the foreground, logging to stderr. */
  args: string[];
}

/**
 * Writes `dir/conf.d/` (`renderConfD()`) and `dir/nginx.conf`, a minimal main configuration that
 * includes `conf.d/*.conf` as the image's does (and so takes the TLS server when it was rendered,
 * and never the `.inc` file its servers include). Pid file and temp paths live in `dir`; errors go
 * to stderr, no access log. A TLS server left in `dir` by an earlier run with TLS is removed when
 * this one has none. The directory is made traversable so that nginx workers can use it when nginx
 * runs as root.
 */
export function renderStandalone(dir: string, options: SiteOptions): Standalone {
  const prefix = resolve(dir);
  const confD = resolve(prefix, "conf.d");
  const pidPath = resolve(prefix, "nginx.pid");
  const configPath = resolve(prefix, "nginx.conf");
  const quote = (path: string): string => JSON.stringify(path);
  const rendered = renderConfD(options);
  mkdirSync(confD, { recursive: true });
  mkdirSync(resolve(prefix, "temp"), { recursive: true });
  chmodSync(prefix, 0o755);
  chmodSync(resolve(prefix, "temp"), 0o755);
  const files = rendered.map((file) => {
    const path = resolve(confD, file.name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.text);
    return path;
  });
  for (const stale of templatesIn(TLS_TEMPLATES_DIR).map((name) => resolve(confD, name.slice(0, -TEMPLATE_SUFFIX.length)))) {
    if (!files.includes(stale)) rmSync(stale, { force: true });
  }
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
      `    include ${quote(`${confD}/*.conf`)};`,
      "}",
      "",
    ].join("\n"),
  );
  return { prefix, configPath, sitePath: resolve(confD, "default.conf"), files, pidPath, args: ["-e", "stderr", "-p", prefix, "-c", configPath, "-g", "daemon off;"] };
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      upstream: { type: "string", multiple: true, default: [] },
      listen: { type: "string", default: "8080" },
      resolve: { type: "boolean", default: false },
      resolver: { type: "string" },
      "tls-listen": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || values.upstream.length === 0) {
    process.stdout.write(
      [
        "usage: npx tsx nginx/render.ts --upstream HOST:PORT [--upstream HOST:PORT ...] [--listen [ADDR:]PORT]",
        "                               [--resolve] [--resolver DNS]",
        "                               [--tls-listen [ADDR:]PORT --tls-cert CERT.pem --tls-key KEY.pem] [--out DIR]",
        "Without --out, prints the rendered conf.d files; with --out, writes DIR/nginx.conf and DIR/conf.d/ for `nginx -p DIR -c DIR/nginx.conf`.",
        "With the three --tls-* options, the site gets a second server with TLS (wss://, https://) on --tls-listen.",
        "",
      ].join("\n"),
    );
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const tlsValues = [values["tls-listen"], values["tls-cert"], values["tls-key"]];
  if (tlsValues.some((value) => value !== undefined) && tlsValues.some((value) => value === undefined)) {
    throw new Error("nginx: --tls-listen, --tls-cert and --tls-key go together");
  }
  const [tlsListen, tlsCert, tlsKey] = tlsValues;
  const tls = tlsListen === undefined || tlsCert === undefined || tlsKey === undefined ? undefined : { listen: tlsListen, cert: resolve(tlsCert), key: resolve(tlsKey) };
  const options: SiteOptions = { upstreams: values.upstream, listen: values.listen, resolve: values.resolve, resolver: values.resolver, tls };
  if (values.out === undefined) {
    process.stdout.write(renderConfD(options).map((file) => `# ---- conf.d/${file.name}\n${file.text}`).join("\n"));
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
