#!/usr/bin/env bash
# Assemble a Debian bookworm + Python 3.11 base image without any registry:
# debootstrap a minimal root file system, then import it into podman.
#
#   images/debian-base.sh [ROOTFS_DIR] [IMAGE]     (make image-base-debian)
#
# The result stands in for python:3.11-slim-bookworm as the CPU image's BASE_IMAGE where
# no base image can be pulled (python3 is /usr/bin/python3 here, /usr/local/bin/python3
# there; the Dockerfile only calls `python3`). Needs root, debootstrap and podman.
set -euo pipefail
rootfs="${1:-/var/tmp/kuberay-llm-rootfs}"
image="${2:-localhost/kuberay-llm-base:bookworm-py311}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,ca-certificates,libnuma1,libgomp1,wget

if [ ! -x "$rootfs/usr/bin/python3" ]; then
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror"
fi
# Slim the tree like the official slim images: no apt lists, docs or man pages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/bin/bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  - "$image"
podman image inspect "$image" --format '{{.Id}} {{.Size}}'
