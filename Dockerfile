# Conclave, a Consul-compatible agent. Multi-stage: dependencies and the TypeScript build in
# `build`; the runtime stage gets production dependencies and the compiled JavaScript only, and
# runs as the unprivileged `node` user.
#
#   docker build -t conclave .                                    # with registry access
#   docker build -t conclave --build-arg BASE_IMAGE=conclave-base:node20 \
#                --build-arg NPM_CAFILE=/etc/ssl/certs/ca-certificates.crt .   # offline (README)
#
# Any Node 20 image with a POSIX shell and a `node` user (uid 1000) works as BASE_IMAGE.
# Instructions are few on purpose: with the vfs storage driver every step copies the image.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Path of a CA bundle *inside the base image* that npm must trust to reach the registry (a
# registry reached through a TLS-inspecting proxy). Seen by this stage's npm commands only:
# nothing is written to a file, and the runtime stage never sees it.
ARG NPM_CAFILE=""
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN if [ -n "$NPM_CAFILE" ]; then export NPM_CONFIG_CAFILE="$NPM_CAFILE"; fi \
 && npm ci --no-audit --no-fund --loglevel=warn \
 && rm -rf /root/.npm
COPY src ./src
COPY docker ./docker
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=warn \
 && mkdir -p /out/app/build /out/app/docker /out/data \
 && cp -a package.json node_modules /out/app/ \
 && cp -a build/src /out/app/build/src \
 && cp -a docker/healthcheck.mjs /out/app/docker/

FROM ${BASE_IMAGE}
# /app: code, owned by root (read-only to the agent); /data: the agent's data dir (node id,
# Raft log, snapshots), a volume owned by `node`. Config files go in /etc/conclave (mounted).
COPY --from=build /out/app /app
COPY --from=build --chown=1000:1000 /out/data /data
VOLUME ["/data"]
USER node
EXPOSE 8500 8300
# Healthy = the HTTP API answers and knows a leader (GET /v1/status/leader is a non-empty string).
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/build/src/main.js"]
# Without arguments: a single-node development agent, HTTP on every interface.
CMD ["agent", "-dev", "-client", "0.0.0.0"]
