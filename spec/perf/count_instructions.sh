#!/usr/bin/env bash
# User-space instructions per proxied request, counted with callgrind: the one
# plugin-cost figure that a busy shared machine cannot move. For each variant,
# sluice (one worker) runs under `valgrind --tool=callgrind` in front of an
# nginx origin; a keep-alive client sends N1 and then, in a second run, N2
# GETs; (instructions(N2) - instructions(N1)) / (N2 - N1) cancels start-up and
# shutdown and leaves the cost of one request.
#
#   spec/perf/count_instructions.sh [--variants "none noop-lua ..."] [--n1 200] [--n2 1200]
#
# Variants: none, noop-lua, header-lua, header-c (the plugins of
# bench_plugins.sh), local (key-auth + rate-limit, local counters), redis
# (the same with Redis counters; needs redis-server). Each is also reported
# relative to `none`. Kernel time (system calls, TCP) is not counted, so these
# ratios overstate what a plugin costs in throughput.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
REPO_ROOT=$(cd "$here/../.." && pwd)

variants="none noop-lua header-lua header-c local"
n1=200
n2=1200
while (($#)); do
    case "$1" in
    --variants) variants=$2; shift 2 ;;
    --n1) n1=$2; shift 2 ;;
    --n2) n2=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
[[ $n1 =~ ^[0-9]+$ && $n2 =~ ^[0-9]+$ && $n2 -gt $n1 ]] || perf_die "--n2 must be larger than --n1"

SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/sluice}
SPEC_PLUGINS=${SLUICE_SPEC_PLUGIN_DIR:-$(dirname "$SLUICE_BIN")/spec-plugins}
[ -x "$SLUICE_BIN" ] || perf_die "sluice binary not found: $SLUICE_BIN"
command -v valgrind >/dev/null || perf_die "valgrind not found"
command -v python3 >/dev/null || perf_die "python3 not found"

perf_init
perf_free_port; origin_port=$PERF_PORT
perf_nginx_start origin "$PERF_CPU_SECOND" "$origin_port" \
    "$(perf_nginx_origin_block "$origin_port" sluice-instruction-count)"
redis_port=""
if [[ " $variants " == *" redis "* ]]; then
    command -v redis-server >/dev/null || perf_die "redis-server not found (variant redis)"
    perf_free_port; redis_port=$PERF_PORT
    perf_spawn redis "$PERF_CPU_SECOND" redis-server --port "$redis_port" --bind 127.0.0.1 \
        --save "" --appendonly no --dir "$PERF_TMP"
    perf_wait_listening "$PERF_LAST_PID" "$redis_port" redis 10
fi

cat >"$PERF_TMP/client.py" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
headers = {"X-Api-Key": "bench-key-0123456789", "X-In": "v"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/", headers=headers)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("status %d" % r.status)
PY

config() { # VARIANT PORT
    local plugins="" redis_line=""
    [ -n "$redis_port" ] && redis_line="redis: {url: \"redis://127.0.0.1:$redis_port\"}"
    case $1 in
    none) ;;
    noop-lua | header-lua | header-c) plugins="    plugins: [{$1: {}}]" ;;
    local | redis)
        plugins="    plugins:
      - key-auth: {}
      - rate-limit: {limits: [{count: 1000000000, window: 1h}], policy: $1, key: [consumer]}" ;;
    *) perf_die "unknown variant: $1" ;;
    esac
    cat <<YAML
listen: 127.0.0.1:$2
workers: 1
log: {access: off}
plugin_dirs: ["$here/plugins", "$SPEC_PLUGINS"]
$redis_line
consumers:
  - {name: bench, credentials: {key-auth: [{key: bench-key-0123456789}]}}
upstreams:
  origin: {targets: [http://127.0.0.1:$origin_port]}
routes:
  - name: all
    match: {paths: ["/*"]}
    upstream: origin
$plugins
YAML
}

# count VARIANT N: total instructions of one sluice run serving N requests.
count() {
    local v=$1 n=$2 port out
    perf_free_port; port=$PERF_PORT
    config "$v" "$port" >"$PERF_TMP/$v.yaml"
    out="$PERF_TMP/callgrind.$v.$n"
    perf_spawn "sluice-$v-$n" "$PERF_CPU_FIRST" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$SLUICE_BIN" -c "$PERF_TMP/$v.yaml"
    local pid=$PERF_LAST_PID
    perf_wait_listening "$pid" "$port" "sluice-$v-$n" 60
    python3 "$PERF_TMP/client.py" "$port" "$n" || perf_die "$v: the client failed"
    perf_stop "$pid"
    perf_forget "$pid"
    awk '/^summary:/ { print $2 }' "$out"
}

printf 'user-space instructions per request (callgrind, (run of %d - run of %d) / %d)\n' "$n2" "$n1" $((n2 - n1))
base=""
for v in $variants; do
    a=$(count "$v" "$n1")
    b=$(count "$v" "$n2")
    per=$(((b - a) / (n2 - n1)))
    [ "$v" = none ] && base=$per
    if [ -n "$base" ] && [ "$v" != none ]; then
        printf '  %-11s %8d  %+6.1f%% vs none\n' "$v" "$per" "$(awk -v p="$per" -v b="$base" 'BEGIN { print (p - b) * 100 / b }')"
    else
        printf '  %-11s %8d\n' "$v" "$per"
    fi
done
