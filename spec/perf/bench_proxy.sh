#!/usr/bin/env bash
# Proxy throughput and tail latency of sluice against nginx, measured in the
# same run on the same machine so that only the ratio matters.
# See spec/perf/README.md for how to run it and read the result.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=spec/perf/lib.sh
source "$HERE/lib.sh"

TARGET_RPS_RATIO=0.90
TARGET_P99_RATIO=1.20
WARMUP=2s

usage() {
    cat <<EOF
usage: $(basename "$0") [--duration 10s] [--connections 50] [--rounds 2] [--self-test] [--keep]

  --duration D      length of each measured wrk run (wrk syntax: 10s, 1m; default 10s)
  --connections N   concurrent client connections (default 50)
  --rounds N        measured rounds; each round runs nginx then the candidate (default 2)
  --self-test       benchmark a second nginx proxy instead of sluice (ratios should be ~1.0)
  --keep            keep the temp dir with configs and logs, and print where it is

env: SLUICE_BIN (default: build/sluice under the repo root), NGINX_BIN (default /usr/sbin/nginx)
EOF
}

bad_usage() {
    printf 'error: %s\n' "$1" >&2
    usage >&2
    exit 2
}

duration=10s
connections=50
rounds=2
self_test=0
while (($#)); do
    case $1 in
        --duration) (($# >= 2)) || bad_usage "--duration needs a value"; duration=$2; shift 2 ;;
        --duration=*) duration=${1#*=}; shift ;;
        --connections) (($# >= 2)) || bad_usage "--connections needs a value"; connections=$2; shift 2 ;;
        --connections=*) connections=${1#*=}; shift ;;
        --rounds) (($# >= 2)) || bad_usage "--rounds needs a value"; rounds=$2; shift 2 ;;
        --rounds=*) rounds=${1#*=}; shift ;;
        --self-test) self_test=1; shift ;;
        --keep) PERF_KEEP_TMP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) bad_usage "unknown argument: $1" ;;
    esac
done
# wrk reads "10" as seconds and accepts s/m/h suffixes; anything else it would
# silently turn into a zero-length run.
[[ $duration =~ ^[0-9]+[smh]?$ && ! $duration =~ ^0+[smh]?$ ]] ||
    bad_usage "--duration must be a positive whole number with an optional s, m or h suffix, got '$duration'"
[[ $connections =~ ^[1-9][0-9]{0,3}$ && $connections -le 4096 ]] ||
    bad_usage "--connections must be a whole number from 1 to 4096, got '$connections'"
[[ $rounds =~ ^[1-9][0-9]?$ ]] ||
    bad_usage "--rounds must be a whole number from 1 to 99, got '$rounds'"

command -v wrk >/dev/null || perf_die "wrk not found (apt-get install wrk)"
command -v taskset >/dev/null || perf_die "taskset not found (apt-get install util-linux)"

if ((self_test)); then
    candidate="nginx-2"
else
    candidate="sluice"
    SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/sluice}
    # A bare name would be looked up in PATH when started but tested here
    # against the current directory; anchor relative paths to the latter.
    [[ $SLUICE_BIN == /* ]] || SLUICE_BIN="$PWD/$SLUICE_BIN"
    [[ -f $SLUICE_BIN && -x $SLUICE_BIN ]] ||
        perf_die "sluice binary not found or not executable: $SLUICE_BIN (build it, set SLUICE_BIN, or use --self-test)"
fi

perf_init
# With two cores, the proxy gets one to itself and the load side (origin and
# wrk, both far cheaper per request than a proxy) shares the other.
CPU_PROXY=$PERF_CPU_FIRST
CPU_LOAD=$PERF_CPU_SECOND

# 256 bytes of plain ASCII, safe inside an nginx "..." string.
origin_body=""
while ((${#origin_body} < 256)); do
    origin_body+="sluice-bench-0123456789abcdefghijklmnopqrstuvwxyz-"
done
origin_body=${origin_body:0:256}

perf_free_port; origin_port=$PERF_PORT
perf_free_port; reference_port=$PERF_PORT
perf_free_port; candidate_port=$PERF_PORT

perf_nginx_start origin "$CPU_LOAD" "$origin_port" \
    "$(perf_nginx_origin_block "$origin_port" "$origin_body")"
perf_check_proxy origin "$origin_port" "$origin_body"

perf_nginx_start nginx "$CPU_PROXY" "$reference_port" \
    "$(perf_nginx_proxy_block "$reference_port" "$origin_port")"

if ((self_test)); then
    perf_nginx_start "$candidate" "$CPU_PROXY" "$candidate_port" \
        "$(perf_nginx_proxy_block "$candidate_port" "$origin_port")"
else
    sluice_conf="$PERF_TMP/sluice.yaml"
    cat >"$sluice_conf" <<EOF
listen: 127.0.0.1:$candidate_port
workers: 1
log: {access: off}
upstreams:
  origin:
    targets: [http://127.0.0.1:$origin_port]
routes:
  - name: all
    match: {paths: ["/*"]}
    upstream: origin
EOF
    perf_spawn sluice "$CPU_PROXY" "$SLUICE_BIN" -c "$sluice_conf"
    perf_wait_listening "$PERF_LAST_PID" "$candidate_port" sluice 10
fi

# A proxy that answers fast with errors would look great in req/s: make sure
# both really pass the origin's answer through before timing anything.
perf_check_proxy nginx "$reference_port" "$origin_body"
perf_check_proxy "$candidate" "$candidate_port" "$origin_body"

declare -A port_of=([nginx]=$reference_port [$candidate]=$candidate_port)
declare -A rps_of=() p50_of=() p99_of=() errors_of=()

pin_note="proxy under test on CPU $CPU_PROXY, origin nginx and wrk on CPU $CPU_LOAD"
((PERF_PIN_CPUS)) || pin_note="none (fewer than 2 CPUs)"
printf 'sluice proxy benchmark: wrk -t1 -c%s -d%s, %s round(s), warm-up %s each\n' \
    "$connections" "$duration" "$rounds" "$WARMUP"
printf 'pinning: %s\n' "$pin_note"
((self_test)) && printf 'self-test: the candidate is a second, identical nginx proxy\n'
printf '\n'

for name in nginx "$candidate"; do
    printf 'warming up %s...\n' "$name"
    perf_wrk "$CPU_LOAD" "http://127.0.0.1:${port_of[$name]}/" "$WARMUP" "$connections" \
        "$PERF_TMP/warmup-$name.txt" || perf_die "warm-up of $name failed"
done

for ((round = 1; round <= rounds; round++)); do
    # Interleaved so that a neighbour's load on this shared machine lands on
    # both proxies instead of biasing one of them.
    for name in nginx "$candidate"; do
        printf 'round %d/%d: %s...\n' "$round" "$rounds" "$name"
        out="$PERF_TMP/round$round-$name.txt"
        perf_wrk "$CPU_LOAD" "http://127.0.0.1:${port_of[$name]}/" "$duration" "$connections" "$out" ||
            perf_die "measuring $name failed"
        read -r rps p50 p99 errors _ < <(perf_wrk_parse "$out")
        rps_of[$name]+="$rps "
        p50_of[$name]+="$p50 "
        p99_of[$name]+="$p99 "
        errors_of[$name]+="$errors "
    done
done

# shellcheck disable=SC2086  # the per-round lists are meant to split
median_of() { perf_median $1; }
sum_of() { awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }' <<<"$1"; }

printf '\nper round (req/s, p50 ms, p99 ms, errors):\n'
for name in nginx "$candidate"; do
    read -ra r_rps <<<"${rps_of[$name]}"
    read -ra r_p50 <<<"${p50_of[$name]}"
    read -ra r_p99 <<<"${p99_of[$name]}"
    read -ra r_err <<<"${errors_of[$name]}"
    for ((i = 0; i < rounds; i++)); do
        printf '  round %-2d %-8s %12.1f %10.3f %10.3f %8d\n' \
            $((i + 1)) "$name" "${r_rps[i]}" "${r_p50[i]}" "${r_p99[i]}" "${r_err[i]}"
    done
done

ref_rps=$(median_of "${rps_of[nginx]}")
ref_p50=$(median_of "${p50_of[nginx]}")
ref_p99=$(median_of "${p99_of[nginx]}")
ref_err=$(sum_of "${errors_of[nginx]}")
cand_rps=$(median_of "${rps_of[$candidate]}")
cand_p50=$(median_of "${p50_of[$candidate]}")
cand_p99=$(median_of "${p99_of[$candidate]}")
cand_err=$(sum_of "${errors_of[$candidate]}")

rps_ratio=$(perf_ratio "$cand_rps" "$ref_rps")
p99_ratio=$(perf_ratio "$cand_p99" "$ref_p99")
rps_verdict=$(perf_verdict "$rps_ratio" ">=" "$TARGET_RPS_RATIO")
p99_verdict=$(perf_verdict "$p99_ratio" "<=" "$TARGET_P99_RATIO")
# Failed requests are cheap to serve; a candidate that dropped any has not
# met a throughput or latency target whatever the numbers say.
if ((cand_err > 0)); then
    rps_verdict="MISS (errors)"
    p99_verdict="MISS (errors)"
fi

printf '\nmedian of %d round(s):\n' "$rounds"
printf '  %-10s %12s %10s %10s %8s\n' proxy "req/s" "p50 ms" "p99 ms" errors
printf '  %-10s %12.1f %10.3f %10.3f %8d\n' nginx "$ref_rps" "$ref_p50" "$ref_p99" "$ref_err"
printf '  %-10s %12.1f %10.3f %10.3f %8d\n' "$candidate" "$cand_rps" "$cand_p50" "$cand_p99" "$cand_err"
printf '\n'
printf '  %-26s %7s   target >= %.2fx   %s\n' "throughput $candidate/nginx" "${rps_ratio}x" \
    "$TARGET_RPS_RATIO" "$rps_verdict"
printf '  %-26s %7s   target <= %.2fx   %s\n' "p99 latency $candidate/nginx" "${p99_ratio}x" \
    "$TARGET_P99_RATIO" "$p99_verdict"
if ((ref_err > 0 || cand_err > 0)); then
    printf '\nwarning: errors are non-2xx/3xx answers plus wrk socket errors (connect, read, write, timeout);\n'
    printf 'rerun with --keep and read the round*.txt wrk reports and the proxies'"'"' logs.\n'
fi
exit 0
