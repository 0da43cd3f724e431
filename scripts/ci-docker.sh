#!/usr/bin/env bash
# Makes a Docker engine available for the docker compose end-to-end test (test/docker/):
# installs Debian's docker.io, docker-compose 1.29 and busybox-static if missing, starts dockerd
# (vfs storage driver: works in any sandbox, no overlay mounts) unless one already answers, and
# builds the local stand-in base image (scripts/docker-base-image.sh), since no image can be
# pulled here. Idempotent; safe to run on every CI run.
#
#   scripts/ci-docker.sh            # install + start + base image
#   DOCKERD_LOG=/tmp/d.log scripts/ci-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/conclave-dockerd.log}
DOCKERD_WAIT_S=${DOCKERD_WAIT_S:-60}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-docker: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  echo "ci-docker: a Docker engine already answers"
else
  echo "ci-docker: starting dockerd --storage-driver=vfs (log: $DOCKERD_LOG)"
  # setsid + nohup: the daemon outlives this script (the tests run after it returns).
  setsid nohup dockerd --storage-driver=vfs >"$DOCKERD_LOG" 2>&1 < /dev/null &
  echo $! > /tmp/conclave-dockerd.pid
  deadline=$((SECONDS + DOCKERD_WAIT_S))
  until docker info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "ci-docker: dockerd did not answer within ${DOCKERD_WAIT_S}s; last lines of $DOCKERD_LOG:" >&2
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      exit 1
    fi
    sleep 1
  done
  echo "ci-docker: dockerd is up"
fi

# In CI only (nothing else runs there): remove what an interrupted end-to-end run may have left
# behind — its compose projects are all named conclave-e2e-<random>.
if [ "${CI:-}" = "true" ]; then
  e2e() { awk '$2 ~ /^conclave-e2e-/ { print $1 }'; }
  label='{{.Label "com.docker.compose.project"}}'
  containers=$(docker ps -a --format "{{.ID}} $label" | e2e)
  [ -z "$containers" ] || { echo "ci-docker: removing leftover e2e containers"; docker rm -f -v $containers >/dev/null; }
  networks=$(docker network ls --format "{{.ID}} $label" | e2e)
  [ -z "$networks" ] || { echo "ci-docker: removing leftover e2e networks"; docker network rm $networks >/dev/null || true; }
  volumes=$(docker volume ls --format "{{.Name}} $label" | e2e)
  [ -z "$volumes" ] || { echo "ci-docker: removing leftover e2e volumes"; docker volume rm $volumes >/dev/null || true; }
  docker images --format '{{.Repository}}:{{.Tag}}' | grep '^conclave-e2e-' | xargs -r docker rmi --no-prune >/dev/null || true
  # The build cache of the classic builder is untagged images; vfs stores every layer in full
  # (1-2 GB per source change): keep a day of it.
  docker image prune -f --filter until=24h >/dev/null || true
fi

scripts/docker-base-image.sh
