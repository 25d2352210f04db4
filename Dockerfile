# syntax=docker/dockerfile:1
# peer-server image: Node.js LTS, compiled JavaScript and production dependencies only, run as the
# unprivileged "node" user. The build stage compiles the TypeScript (npm run build -> dist/, and the
# client SDK's bundle -> client/dist/); the runtime holds those, the examples, package.json and the
# production node_modules, and runs plain node.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json cluster.ts ./
COPY src ./src
COPY client ./client
RUN npm run build

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
# Owned by root and read-only for the server: it writes nothing under /app.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The SDK's browser bundle and the pages that use it, which the server serves (/client/, /demo/, /examples/).
COPY --from=build /app/client/dist ./client/dist
COPY examples ./examples
COPY package.json package-lock.json ./
USER node
EXPOSE 8080
# Slim images have no curl: ask /health with Node's fetch. Plain HTTP only (with TLS_CERT/TLS_KEY
# set, replace this check). 503 (not ready, shutting down) counts as unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PEER_PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself as the main process (not npm), so that SIGTERM reaches the server's graceful shutdown.
# With workers 0 (the default) it forks one worker per CPU the container may use (its CPU quota).
CMD ["node", "dist/cluster.js"]
