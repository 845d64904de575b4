#!/usr/bin/env bash
# Install the system packages the project needs, only those missing (Debian/Ubuntu, as root or sudo).
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in tesseract-ocr tesseract-ocr-vie tesseract-ocr-eng poppler-utils fonts-dejavu-core \
           postgresql redis-server; do
  have "$pkg" || need+=("$pkg")
done
# A machine whose PostgreSQL or Redis came from elsewhere (binaries on PATH) needs no package.
if command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null; then
  need=("${need[@]/postgresql}")
fi
if command -v redis-server >/dev/null; then need=("${need[@]/redis-server}"); fi
read -r -a need <<<"${need[*]:-}"
if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
