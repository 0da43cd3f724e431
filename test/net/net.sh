#!/usr/bin/env bash
# Tier 3 topology (RELIABILITY.md): `net.sh up N` makes a bridge in namespace kvt-sw joining
# hosts kvt-n1..N (10.77.0.1..N/24, over veth) and kvt-ctl (10.77.0.100), where clients and the
# nemesis run. No default route, no NAT, no link to the root namespace. `net.sh down` removes
# the namespaces, unmounts the data images under /var/tmp/kvt and detaches their loop devices.
# Everything is named kvt-…; nothing else is touched.
set -euo pipefail
ROOT=/var/tmp/kvt

down() {
  for mnt in "$ROOT"/mnt/*; do
    [ -d "$mnt" ] && mountpoint -q "$mnt" && umount -l "$mnt" 2>/dev/null || true
  done
  for img in "$ROOT"/*.img; do
    [ -e "$img" ] || continue
    for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do losetup -d "$dev" 2>/dev/null || true; done
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^kvt-' || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

host() {
  local name=$1 address=$2
  ip netns add "$name"
  ip link add "$name-a" type veth peer name "$name-b"
  ip link set "$name-a" netns "$name"
  ip link set "$name-b" netns kvt-sw
  ip -n "$name" link set "$name-a" name eth0
  ip -n "$name" addr add "$address/24" dev eth0
  ip -n "$name" link set eth0 up
  ip -n "$name" link set lo up
  ip -n kvt-sw link set "$name-b" master kvt-br0
  ip -n kvt-sw link set "$name-b" up
}

up() {
  local count=${1:-5}
  down
  ip netns add kvt-sw
  ip -n kvt-sw link set lo up
  ip -n kvt-sw link add kvt-br0 type bridge
  ip -n kvt-sw link set kvt-br0 up
  for i in $(seq 1 "$count"); do host "kvt-n$i" "10.77.0.$i"; done
  host kvt-ctl 10.77.0.100
}

case "${1:-}" in
  up) up "${2:-5}" ;;
  down) down ;;
  *) echo "usage: $0 up N | down" >&2; exit 2 ;;
esac
