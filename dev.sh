#!/usr/bin/env bash
# The two commands of the README, and the steps they share.
#   ./dev.sh run    install dependencies, build, run examples/quickstart.yaml
#   ./dev.sh test   install dependencies, build (plain + ASan/UBSan), run every test
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  build-essential cmake pkg-config
  libevhtp-dev libevent-dev libssl-dev libluajit-5.1-dev libhiredis-dev libmaxminddb-dev
  libjansson-dev libyaml-dev
  python3 python3-pytest python3-pytest-timeout redis-server openssl valgrind libmaxmind-db-writer-perl
  nginx-light wrk procps
)

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The client-SDK specs (spec/clients) need node >= 18 and npm: Debian's
# packages unless a node is already there (NodeSource's bundles its own npm
# and conflicts with Debian's npm package). Packages come from the npm
# registry through the committed lockfile.
node_deps() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  if [ ! spec/clients/node_modules/.package-lock.json -nt spec/clients/package-lock.json ]; then
    npm ci --prefix spec/clients --no-audit --no-fund --loglevel=error
  fi
}

jobs() { nproc 2>/dev/null || echo 2; }

build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build build -j "$(jobs)"
}

case "${1:-}" in
  run)
    deps
    build
    exec build/sluice -c examples/quickstart.yaml
    ;;
  test)
    deps
    node_deps
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
    cmake --build build-asan -j "$(jobs)" --target sluice
    build -DSLUICE_ASAN_BIN="$PWD/build-asan/sluice" -DSLUICE_VALGRIND=ON
    cd build && ctest --output-on-failure -j "$(jobs)"
    ;;
  build)
    deps
    build
    ;;
  *)
    echo "usage: $0 run|test|build" >&2
    exit 2
    ;;
esac
