/**
 * The layers of src/, lowest first, and who may import whom (`npm test` runs this check):
 *
 *   config, observability, internals, protocol   the floor: wire formats, options, logging, library seams
 *   backends/  (contracts at its root; memory/, cluster/, redis/ beside each other)
 *   trust/                                       pure checks of who a client is: key proofs, access tokens, origins, client addresses
 *   delivery/  limits/
 *   core/                                        the transport-free domain
 *   transport/  http/  admin/                   the edges; admin/ is the admin listener and its route table
 *   dialects/                                    other servers' protocols, bound to the core over transport/
 *   server.ts                                    the one place that wires everything
 *   process/  cluster/                           process roles (single, primary, worker)
 *   cluster.ts                                   the entry point: nothing imports it
 *
 * A lower layer never imports a higher one; the core and the transports see backends only through
 * their contracts (src/backends/*.ts), never an implementation folder.
 *
 * client/ (the SDK, its own package) and the server are strangers: neither imports the other. The
 * SDK declares the wire types it reads, and a type test checks that the server's messages fit them.
 */
const IMPLEMENTATIONS = "^src/backends/(memory|cluster|redis)/";
const ABOVE_CORE = "^src/(transport|http|admin|dialects|process|cluster)/|^src/server\\.ts$|^cluster\\.ts$";

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "modules form a DAG", from: {}, to: { circular: true } },
    { name: "entry-is-not-imported", severity: "error", comment: "cluster.ts is the entry point", from: {}, to: { path: "^cluster\\.ts$" } },
    {
      name: "protocol-is-the-floor",
      severity: "error",
      comment: "client wire formats import only each other",
      from: { path: "^src/protocol/", pathNot: "^src/protocol/cluster-messages\\.ts$" },
      to: { path: "^src/", pathNot: "^src/protocol/" },
    },
    {
      name: "ipc-messages-carry-backend-data-only",
      severity: "error",
      comment: "inter-process messages may name the backends' data types, nothing above",
      from: { path: "^src/protocol/cluster-messages\\.ts$" },
      to: { path: "^src/", pathNot: "^src/(protocol|backends)/" },
    },
    {
      name: "floor-stays-down",
      severity: "error",
      from: { path: "^src/(config|observability|internals)/" },
      to: { path: "^src/", pathNot: "^src/(config|observability|internals)/" },
    },
    {
      name: "backends-import-nothing-above",
      severity: "error",
      comment: "a backend gets the handlers it needs at start; it never imports the core or the server",
      from: { path: "^src/backends/" },
      to: { path: "^src/(core|delivery|limits|transport|http|admin|process|cluster)/|^src/server\\.ts$" },
    },
    {
      name: "backend-implementations-stand-alone",
      severity: "error",
      comment: "memory and redis do not know each other or the cluster (the cluster's primary keeps a memory store)",
      from: { path: "^src/backends/(memory|redis)/" },
      to: { path: IMPLEMENTATIONS, pathNot: "^src/backends/$1/" },
    },
    {
      name: "trust-is-pure",
      severity: "error",
      comment: "the trust checks take their inputs as values: they import only the floor",
      from: { path: "^src/trust/" },
      to: { path: "^src/", pathNot: "^src/(trust|config|observability|protocol)/" },
    },
    {
      name: "delivery-below-core",
      severity: "error",
      from: { path: "^src/delivery/" },
      to: { path: `^src/(core|limits|backends)/|${ABOVE_CORE}` },
    },
    {
      name: "limits-below-core",
      severity: "error",
      from: { path: "^src/limits/" },
      to: { path: `^src/(core|delivery)/|${IMPLEMENTATIONS}|${ABOVE_CORE}` },
    },
    {
      name: "core-below-transports",
      severity: "error",
      comment: "the core sees backends through their contracts and never a transport",
      from: { path: "^src/core/" },
      to: { path: `${IMPLEMENTATIONS}|${ABOVE_CORE}` },
    },
    {
      name: "transports-below-server",
      severity: "error",
      from: { path: "^src/(transport|http)/" },
      to: { path: `${IMPLEMENTATIONS}|^src/(admin|dialects|process|cluster)/|^src/server\\.ts$|^cluster\\.ts$` },
    },
    {
      name: "dialects-below-server",
      severity: "error",
      comment: "a dialect binds to the core through its public modules and a transport's endpoint seam",
      from: { path: "^src/dialects/" },
      to: { path: `${IMPLEMENTATIONS}|^src/(admin|process|cluster|delivery)/|^src/server\\.ts$|^cluster\\.ts$` },
    },
    {
      name: "dialects-stand-alone",
      severity: "error",
      comment: "a dialect's folder imports only itself and the shared seam at src/dialects/*.ts",
      from: { path: "^src/dialects/([^/]+)/" },
      to: { path: "^src/dialects/[^/]+/", pathNot: "^src/dialects/$1/" },
    },
    {
      name: "http-knows-no-domain",
      severity: "error",
      comment: "the HTTP endpoints read a status source the server gives them",
      from: { path: "^src/http/" },
      to: { path: "^src/(core|delivery|transport|backends|limits)/" },
    },
    {
      name: "admin-knows-no-domain",
      severity: "error",
      comment: "the admin listener serves the routes the process roles give it; it imports only the floor below it",
      from: { path: "^src/admin/" },
      to: { path: "^src/", pathNot: "^src/(admin|config|observability)/" },
    },
    {
      name: "client-stands-alone",
      severity: "error",
      comment: "the SDK is a package of its own, built for browsers: it imports nothing of the server",
      from: { path: "^client/" },
      to: { path: "^(src/|cluster\\.ts$)" },
    },
    {
      name: "server-knows-no-client",
      severity: "error",
      comment: "the server serves the SDK's built bundle as a file; it never imports its sources",
      from: { path: "^(src/|cluster\\.ts$)" },
      to: { path: "^client/" },
    },
    {
      name: "server-below-process-roles",
      severity: "error",
      from: { path: "^src/server\\.ts$" },
      to: { path: "^src/(process|cluster)/|^cluster\\.ts$" },
    },
  ],
  options: {
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|test|bench)/" },
  },
};
