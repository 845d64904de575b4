#!/usr/bin/env bash
# Install the system packages the project needs, only those missing (Debian/Ubuntu, as root or sudo).
# `--runtime`: only what the application itself needs (the Docker image; no servers, no tools).
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
runtime=(tesseract-ocr tesseract-ocr-vie tesseract-ocr-eng poppler-utils fonts-dejavu-core)
# PostgreSQL and Redis for the tests and the local stacks; nginx for `make up-prod`'s reverse proxy;
# docker-compose to check infra/docker-compose.yml where the docker client has no compose plugin.
services=(postgresql redis-server nginx docker-compose chromium chromium-driver)
pkgs=("${runtime[@]}")
[ "${1:-}" = "--runtime" ] || pkgs+=("${services[@]}")
for pkg in "${pkgs[@]}"; do
  have "$pkg" || need+=("$pkg")
done
# A machine whose PostgreSQL or Redis came from elsewhere (binaries on PATH) needs no package.
if command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null; then
  need=("${need[@]/postgresql}")
fi
if command -v redis-server >/dev/null; then need=("${need[@]/redis-server}"); fi
if command -v nginx >/dev/null; then need=("${need[@]/nginx}"); fi
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then
  need=("${need[@]/docker-compose}")
fi
read -r -a need <<<"${need[*]:-}"
if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
