#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image (node:20-bookworm-slim) from material
# already on this machine, for hosts that cannot pull images:
#   - the host's `node` binary and npm (Node 20), plus every shared library `ldd` lists for node
#     and for the native addons the project ships (classic-level, msgpackr-extract);
#   - the host's CA certificates (/etc/ssl/certs, dereferenced; never /etc/ssl/private);
#   - Debian's busybox-static as /bin/sh and the usual applets;
#   - a `node` user (uid/gid 1000) and /home/node, as in the official image.
# The rootfs is tarred and `docker import`ed as $BASE_TAG (default conclave-base:node20). Use it:
#   docker build --build-arg BASE_IMAGE=conclave-base:node20 .
#   CONCLAVE_BASE_IMAGE=conclave-base:node20 docker compose build
# Skips the build when the tag exists and was made from the same node version (--force rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG=${BASE_TAG:-conclave-base:node20}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VERSION=$("$NODE_BIN" --version)
case "$NODE_VERSION" in
  v20.*) ;;
  *) echo "docker-base-image: the host's node is $NODE_VERSION; the stand-in must be Node 20" >&2; exit 1 ;;
esac
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # .../node_modules/npm
BUSYBOX=/bin/busybox
# The dynamic busybox would need its own libraries: insist on Debian's static build.
if ! dpkg -s busybox-static >/dev/null 2>&1 || ! "$BUSYBOX" --list >/dev/null 2>&1; then
  echo "docker-base-image: needs Debian's busybox-static (apt-get install -y busybox-static)" >&2
  exit 1
fi

if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{ index .Config.Labels "conclave.base.node" }}' "$BASE_TAG" 2>/dev/null || true)" = "$NODE_VERSION" ]; then
  echo "docker-base-image: $BASE_TAG is up to date (node $NODE_VERSION)"
  exit 0
fi

ROOT=$(mktemp -d /tmp/conclave-base-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
chmod 0755 "$ROOT"

mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/node_modules,etc,tmp,root,home/node,var/tmp,lib64,proc,sys,dev,run}
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chmod 700 "$ROOT/root"

# Node and npm where the official image has them.
install -m 0755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"

# Shared libraries: node's, and those of the project's native addons (same paths as on the host).
libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }' | grep '^/' || true; }
{
  libs_of "$NODE_BIN"
  for addon in $(find node_modules -name '*.node' -path '*linux*x64*' ! -name '*musl*' 2>/dev/null); do libs_of "$addon"; done
} | sort -u | while read -r lib; do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
  # keep the name the dynamic linker asks for when $lib is itself a symlink's target path
  real=$(readlink -f "$lib")
  if [ "$real" != "$lib" ]; then mkdir -p "$ROOT$(dirname "$real")"; cp -L "$lib" "$ROOT$real"; fi
done

# TLS trust: the host's CA bundle (this is how containers here reach the npm registry).
mkdir -p "$ROOT/etc/ssl/certs"
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/ssl/openssl.cnf ] && cp -L /etc/ssl/openssl.cnf "$ROOT/etc/ssl/openssl.cnf"

# A shell and the usual tools: busybox applets in /bin (and /usr/bin/env for npm's shebang).
cp -L "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"
done
ln -sf /bin/busybox "$ROOT/usr/bin/env"

# Users, name resolution.
cat > "$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
node:x:1000:1000::/home/node:/bin/sh
PASSWD
cat > "$ROOT/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
node:x:1000:
GROUP
echo 'hosts: files dns' > "$ROOT/etc/nsswitch.conf"
touch "$ROOT/etc/hosts" "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
if [ "$(id -u)" = 0 ]; then chown 1000:1000 "$ROOT/home/node"; else chmod 1777 "$ROOT/home/node"; fi

echo "docker-base-image: importing $(du -sh "$ROOT" | cut -f1) as $BASE_TAG (node $NODE_VERSION)"
tar -C "$ROOT" --numeric-owner -cf - . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
  --change "LABEL conclave.base.node=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  - "$BASE_TAG" >/dev/null
echo "docker-base-image: built $BASE_TAG"
