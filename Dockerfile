# syntax=docker/dockerfile:1
# peer-server image: Node.js LTS, production dependencies only, runs as the unprivileged "node" user.
# The server is TypeScript run by tsx (a runtime dependency), so there is no build output to copy:
# the first stage installs the production dependencies, the second holds them and the sources.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PEER_HOST=0.0.0.0 \
    PEER_PORT=8080
# Owned by root and read-only for the server: it writes nothing under /app (tsx caches in /tmp).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json cluster.ts ./
COPY src ./src
USER node
EXPOSE 8080
# Slim images have no curl: ask /health with Node's fetch. Plain HTTP only (with TLS_CERT/TLS_KEY
# set, replace this check). 503 (not ready, shutting down) counts as unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PEER_PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself as the main process (not npm), so that SIGTERM reaches the server's graceful shutdown.
CMD ["node", "--import", "tsx", "cluster.ts"]
