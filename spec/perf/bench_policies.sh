#!/usr/bin/env bash
# The cost of the everyday API-gateway policies: sluice with no plugins
# against key-auth + rate-limit (local counters) and key-auth + rate-limit
# (Redis counters, one round trip per request), all in front of one nginx
# origin, in the same run, reported as ratios against the no-plugin gateway.
#
#   spec/perf/bench_policies.sh [--duration 10s] [--connections 50] [--rounds 3] [--redis-cpu load|any]
#
# --redis-cpu: where redis-server runs. load (default): pinned with nginx
# and wrk on the second CPU, so with two CPUs a busy Redis also slows the
# load generator; any: left to the scheduler, which puts it wherever there
# is idle time (the gateway's CPU too, when the gateway waits on Redis).
#
# Targets: key-auth + local limit >= 0.90x, the Redis policy >= 0.75x.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
REPO_ROOT=$(cd "$here/../.." && pwd)

duration=10s
connections=50
rounds=3
redis_cpu=load
while (($#)); do
    case "$1" in
    --redis-cpu) redis_cpu=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/sluice}
[ -x "$SLUICE_BIN" ] || perf_die "sluice binary not found: $SLUICE_BIN"
command -v wrk >/dev/null || perf_die "wrk not found"
command -v redis-server >/dev/null || perf_die "redis-server not found"

perf_init
CPU_PROXY=$PERF_CPU_FIRST
CPU_LOAD=$PERF_CPU_SECOND
body=$(printf 'sluice-policy-bench-%.0s' {1..12})
perf_free_port; origin_port=$PERF_PORT
perf_nginx_start origin "$CPU_LOAD" "$origin_port" "$(perf_nginx_origin_block "$origin_port" "$body")"
perf_check_proxy origin "$origin_port" "$body"

perf_free_port; redis_port=$PERF_PORT
case $redis_cpu in
load) redis_pin=$CPU_LOAD ;;
any) redis_pin="$CPU_PROXY,$CPU_LOAD" ;;
*) perf_die "--redis-cpu must be load or any, got '$redis_cpu'" ;;
esac
perf_spawn redis "$redis_pin" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$PERF_TMP"
perf_wait_listening "$PERF_LAST_PID" "$redis_port" redis 10

variants=(none local redis)
write_config() { # VARIANT PORT
    local plugins=""
    if [ "$1" != none ]; then
        plugins="    plugins:
      - key-auth: {}
      - rate-limit: {limits: [{count: 1000000000, window: 1h}], policy: $1, key: [consumer]}"
    fi
    cat >"$PERF_TMP/sluice-$1.yaml" <<YAML
listen: 127.0.0.1:$2
workers: 1
log: {access: off}
redis: {url: "redis://127.0.0.1:$redis_port"}
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

# wrk sends the API key on every request through a tiny Lua script.
cat >"$PERF_TMP/key.lua" <<'LUA'
wrk.headers["X-Api-Key"] = "bench-key-0123456789"
LUA

printf 'sluice policy cost: wrk -t1 -c%s -d%s, %s round(s), one worker each, started afresh each round;\n' \
    "$connections" "$duration" "$rounds"
printf 'gateways on CPU %s, nginx and wrk on CPU %s, redis-server on CPU %s\n\n' "$CPU_PROXY" "$CPU_LOAD" "$redis_pin"
PERF_WRK_SCRIPT=$PERF_TMP/key.lua
start_variant() { # VARIANT (see perf_sluice_start for why every round)
    perf_free_port; PERF_VARIANT_PORT[$1]=$PERF_PORT
    write_config "$1" "$PERF_PORT"
    perf_sluice_start "sluice-$1" "$CPU_PROXY" "$PERF_TMP/sluice-$1.yaml" "$PERF_PORT"
    PERF_VARIANT_PID[$1]=$PERF_LAST_PID
    perf_wrk "$CPU_LOAD" "http://127.0.0.1:$PERF_PORT/" 1s "$connections" "$PERF_TMP/warm-$1.txt" "$PERF_WRK_SCRIPT" ||
        perf_die "warm-up of $1 failed"
}

perf_variant_rounds "$rounds" "$duration" "$connections" "${variants[@]}"
echo '(the CPU figures are the gateway'"'"'s alone: redis-server'"'"'s time is left out)'
perf_variant_report none "no plugins"
perf_variant_report local "key-auth + rate-limit local" 0.90
perf_variant_report redis "key-auth + rate-limit redis" 0.75
