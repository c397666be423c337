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
declare -A port_of=() pid_of=() rps_of=() p99_of=() cpu_of=()
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
    perf_free_port; port_of[$1]=$PERF_PORT
    write_config "$1" "${port_of[$1]}"
    perf_sluice_start "sluice-$1" "$CPU_PROXY" "$PERF_TMP/sluice-$1.yaml" "${port_of[$1]}"
    pid_of[$1]=$PERF_LAST_PID
    perf_check_proxy "sluice-$1" "${port_of[$1]}" "$body"
    perf_wrk "$CPU_LOAD" "http://127.0.0.1:${port_of[$1]}/" 1s "$connections" "$PERF_TMP/warm-$1.txt" ||
        perf_die "warm-up of $1 failed"
}


printf 'sluice plugin cost: wrk -t1 -c%s -d%s, %s round(s), one worker each, started afresh each round\n\n' \
    "$connections" "$duration" "$rounds"
for ((round = 1; round <= rounds; round++)); do
    for v in "${variants[@]}"; do
        start_variant "$v"
        out="$PERF_TMP/round$round-$v.txt"
        ticks=$(perf_cpu_ticks "${pid_of[$v]}")
        perf_wrk "$CPU_LOAD" "http://127.0.0.1:${port_of[$v]}/" "$duration" "$connections" "$out" ||
            perf_die "measuring $v failed"
        ticks=$(($(perf_cpu_ticks "${pid_of[$v]}") - ticks))
        perf_sluice_stop "${pid_of[$v]}"
        read -r rps _p50 p99 errors requests < <(perf_wrk_parse "$out")
        ((errors == 0)) || perf_die "$v had $errors errors in round $round"
        cpu=$(perf_cpu_us_per_request "$ticks" "$requests")
        rps_of[$v]+="$rps "
        p99_of[$v]+="$p99 "
        cpu_of[$v]+="$cpu "
        printf '  round %d %-11s %10.1f req/s  p99 %7.3f ms  %6s us CPU/request\n' "$round" "$v" "$rps" "$p99" "$cpu"
    done
done

# shellcheck disable=SC2086
base=$(perf_median ${rps_of[none]})
# shellcheck disable=SC2086
base_cpu=$(perf_median ${cpu_of[none]})
printf '\nmedian of %d rounds, relative to no plugins (throughput: req/s ratio; CPU: no-plugin CPU per\n' "$rounds"
printf 'request / this CPU per request, i.e. the throughput ratio of a saturated worker, which neighbours\n'
printf 'on a shared machine disturb far less):\n'
for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    rps=$(perf_median ${rps_of[$v]})
    # shellcheck disable=SC2086
    p99=$(perf_median ${p99_of[$v]})
    # shellcheck disable=SC2086
    cpu=$(perf_median ${cpu_of[$v]})
    ratio=$(perf_ratio "$rps" "$base")
    cpu_ratio=$(perf_ratio "$base_cpu" "$cpu")
    target=""
    case $v in
    noop-lua | header-lua) limit=0.95 ;;
    header-c) limit=0.98 ;;
    *) limit="" ;;
    esac
    [ -n "$limit" ] && target="target >= ${limit}x: throughput $(perf_verdict "$ratio" ">=" "$limit"), CPU $(perf_verdict "$cpu_ratio" ">=" "$limit")"
    printf '  %-11s %10.1f req/s %6.3fx  p99 %7.3f ms  %6s us CPU/req %6.3fx  %s\n' "$v" "$rps" "$ratio" "$p99" "$cpu" "$cpu_ratio" "$target"
done
