# syntax=docker/dockerfile:1
# tokenmeter images, multi-stage:
#   runtime (default): the exporter (`tokenmeter serve`), production dependencies only, non-root.
#   demo:              the demo workload and mock provider (`tokenmeter demo --workload-only|--mock-only`), which
#                      drive the real openai / @anthropic-ai/sdk packages (dev dependencies), non-root.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The exporter is an npm workspace (packages/exporter: its dependencies); --ignore-scripts: the root's `prepare`
# builds, which needs src/ (copied below, then built explicitly).
COPY packages/exporter/package.json ./packages/exporter/package.json
COPY packages/exporter/bin ./packages/exporter/bin
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY data ./data
RUN npm run build

FROM build AS prod-deps
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS demo
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/data ./data
# The demo's data directory (the mock provider's record) must be writable by the unprivileged user.
RUN mkdir -p /app/.tokenmeter && chown node:node /app/.tokenmeter
USER node
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["demo", "--help"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TOKENMETER_STORAGE=/var/lib/tokenmeter/ledger
WORKDIR /app
COPY --from=prod-deps /app/package.json ./package.json
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/data ./data
# The embedded ledger's default home (a volume in docker-compose.yml when PostgreSQL is not used).
RUN mkdir -p /var/lib/tokenmeter && chown node:node /var/lib/tokenmeter
# The `node` user (uid 1000) of the official Node image: never run the exporter as root.
USER node
EXPOSE 4318 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
