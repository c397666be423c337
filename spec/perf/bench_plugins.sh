#!/usr/bin/env bash
# The cost of plugins: sluice with no plugins against sluice with one no-op
# Lua plugin, a Lua plugin that reads a header and sets one, and the same in
# C -- all in front of one nginx origin, measured in the same run and
# reported as ratios against the no-plugin gateway.
#
#   spec/perf/bench_plugins.sh [--duration 10s] [--connections 50] [--rounds 3]
#
# Targets: trivial Lua plugin costs <= 5% of throughput, the C one <= 2%.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
REPO_ROOT=$(cd "$here/../.." && pwd)

duration=10s
connections=50
rounds=3
while (($#)); do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/sluice}
SPEC_PLUGINS=${SLUICE_SPEC_PLUGIN_DIR:-$(dirname "$SLUICE_BIN")/spec-plugins}
[ -x "$SLUICE_BIN" ] || perf_die "sluice binary not found: $SLUICE_BIN"
[ -f "$SPEC_PLUGINS/header-c.so" ] || perf_die "header-c.so not built in $SPEC_PLUGINS"
command -v wrk >/dev/null || perf_die "wrk not found"

perf_init
CPU_PROXY=$PERF_CPU_FIRST
CPU_LOAD=$PERF_CPU_SECOND
body=$(printf 'sluice-plugin-bench-%.0s' {1..12})
perf_free_port; origin_port=$PERF_PORT
perf_nginx_start origin "$CPU_LOAD" "$origin_port" "$(perf_nginx_origin_block "$origin_port" "$body")"
perf_check_proxy origin "$origin_port" "$body"

variants=(none noop-lua header-lua header-c)
write_config() { # VARIANT PORT
    local plugins=""
    [ "$1" != none ] && plugins="    plugins: [{$1: {}}]"
    cat >"$PERF_TMP/sluice-$1.yaml" <<YAML
listen: 127.0.0.1:$2
workers: 1
log: {access: off}
plugin_dirs: ["$here/plugins", "$SPEC_PLUGINS"]
upstreams:
  origin: {targets: [http://127.0.0.1:$origin_port]}
routes:
  - name: all
    match: {paths: ["/*"]}
    upstream: origin
$plugins
YAML
}

start_variant() { # VARIANT (see perf_sluice_start for why every round)
    perf_free_port; PERF_VARIANT_PORT[$1]=$PERF_PORT
    write_config "$1" "$PERF_PORT"
    perf_sluice_start "sluice-$1" "$CPU_PROXY" "$PERF_TMP/sluice-$1.yaml" "$PERF_PORT"
    PERF_VARIANT_PID[$1]=$PERF_LAST_PID
    perf_check_proxy "sluice-$1" "${PERF_VARIANT_PORT[$1]}" "$body"
    perf_wrk "$CPU_LOAD" "http://127.0.0.1:${PERF_VARIANT_PORT[$1]}/" 1s "$connections" "$PERF_TMP/warm-$1.txt" ||
        perf_die "warm-up of $1 failed"
}


printf 'sluice plugin cost: wrk -t1 -c%s -d%s, %s round(s), one worker each, started afresh each round\n\n' \
    "$connections" "$duration" "$rounds"
perf_variant_rounds "$rounds" "$duration" "$connections" "${variants[@]}"
perf_variant_report none none
perf_variant_report noop-lua noop-lua 0.95
perf_variant_report header-lua header-lua 0.95
perf_variant_report header-c header-c 0.98
