# shellcheck shell=bash disable=SC2034  # PERF_* results are read by the caller
# Shared pieces for the spec/perf benchmarks; source it, do not run it.
#
# Everything a benchmark starts goes through perf_spawn so that perf_cleanup
# (installed as an EXIT/INT/TERM/HUP trap by perf_init) can stop it again, even
# when the run is interrupted half way. Functions that must update that state
# return their result in a PERF_* variable instead of on stdout, because a
# $(...) subshell would lose it.

PERF_NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
PERF_TMP=""
PERF_KEEP_TMP=${PERF_KEEP_TMP:-0}
PERF_PIDS=()
declare -A PERF_PID_NAME=()
declare -A PERF_PORTS_TAKEN=()
PERF_LAST_PID=""
PERF_PORT=""
PERF_PIN_CPUS=1
PERF_CPU_FIRST=0
PERF_CPU_SECOND=1
PERF_CLEANED=0

# Debian's default awk is mawk, which has no strtonum().
PERF_AWK_HEX='function hex(s,   i, c, v) {
    v = 0; s = toupper(s)
    for (i = 1; i <= length(s); i++) {
        c = index("0123456789ABCDEF", substr(s, i, 1))
        if (c == 0) return -1
        v = v * 16 + c - 1
    }
    return v
}'

perf_log() { printf '%s\n' "$*" >&2; }

perf_die() {
    perf_log "error: $*"
    exit 1
}

perf_init() {
    PERF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-perf.XXXXXX") || perf_die "cannot create a temp dir"
    trap perf_cleanup EXIT
    trap 'perf_log "interrupted"; exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    # Many client connections plus as many upstream ones per proxy: lift the
    # soft fd limit so neither proxy is measured against EMFILE.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    local cpus
    read -ra cpus <<<"$(perf_allowed_cpus)"
    if ((${#cpus[@]} < 2)); then
        PERF_PIN_CPUS=0
        perf_log "warning: fewer than 2 CPUs available; running without taskset pinning"
    else
        PERF_CPU_FIRST=${cpus[0]}
        PERF_CPU_SECOND=${cpus[1]}
    fi
}

# The CPUs this process may run on, in order, space separated. Read from the
# kernel rather than assuming 0 and 1, so a cpuset-limited container works.
perf_allowed_cpus() {
    awk -F'\t' '$1 == "Cpus_allowed_list:" {
        n = split($2, parts, ",")
        for (i = 1; i <= n; i++) {
            if (split(parts[i], r, "-") == 2) { for (c = r[1]; c <= r[2]; c++) printf "%d ", c }
            else printf "%d ", parts[i]
        }
    }' /proc/self/status
}

perf_stop() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    # 50 x 0.1 s: sluice drains in-flight requests on SIGTERM; with none left
    # it should be gone long before this runs out. The signal is repeated
    # because one sent in the instant between fork and exec is lost.
    for ((i = 1; i <= 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        ((i % 10 == 0)) && kill -TERM "$pid" 2>/dev/null
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        perf_log "warning: ${PERF_PID_NAME[$pid]:-pid $pid} ignored SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# Drops an already reaped PID from the cleanup list, so that a later cleanup
# can never signal an unrelated process that was given the same pid.
perf_forget() {
    local pid=$1 i kept=()
    for i in "${PERF_PIDS[@]}"; do
        [[ $i == "$pid" ]] || kept+=("$i")
    done
    PERF_PIDS=("${kept[@]}")
    unset "PERF_PID_NAME[$pid]"
}

perf_cleanup() {
    [[ $PERF_CLEANED == 1 ]] && return 0
    PERF_CLEANED=1
    # A second Ctrl-C while stopping must not leave the rest running.
    trap '' INT TERM HUP PIPE
    local i
    for ((i = ${#PERF_PIDS[@]} - 1; i >= 0; i--)); do
        perf_stop "${PERF_PIDS[i]}"
    done
    if [[ -n $PERF_TMP && -d $PERF_TMP ]]; then
        if [[ $PERF_KEEP_TMP == 1 ]]; then
            perf_log "logs and configs kept in $PERF_TMP"
        else
            rm -rf -- "$PERF_TMP"
        fi
    fi
}

# Prints the command prefix that pins to CPU $1, or nothing when pinning is off.
perf_pin() {
    [[ $PERF_PIN_CPUS == 1 ]] && printf 'taskset -c %s' "$1"
}

# Every local TCP port currently bound on this host, in any state: TIME_WAIT
# entries count too, so a fresh listener never collides with a lingering one.
perf_ports_in_use() {
    awk "$PERF_AWK_HEX"'
        FNR > 1 { n = split($2, a, ":"); print hex(a[n]) }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -un
}

# Sets PERF_PORT to a port nobody holds. Picks below the kernel's ephemeral
# range so outgoing connections (wrk's, the proxies') cannot take it between
# here and the bind. Ports handed out earlier in this run are never repeated.
perf_free_port() {
    local lo hi used try port
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    used=" $(perf_ports_in_use | tr '\n' ' ') "
    for ((try = 0; try < 500; try++)); do
        port=$((20000 + RANDOM % 12000))
        ((port >= lo && port <= hi)) && continue
        [[ -n ${PERF_PORTS_TAKEN[$port]:-} ]] && continue
        [[ $used == *" $port "* ]] && continue
        PERF_PORTS_TAKEN[$port]=1
        PERF_PORT=$port
        return 0
    done
    perf_die "no free TCP port found in 20000-31999"
}

# perf_spawn NAME CPU CMD... : starts CMD in the background pinned to CPU,
# stdout+stderr to $PERF_TMP/NAME.log; sets PERF_LAST_PID.
perf_spawn() {
    local name=$1 cpu=$2
    shift 2
    # shellcheck disable=SC2046  # the pin prefix is meant to split into words
    $(perf_pin "$cpu") "$@" >"$PERF_TMP/$name.log" 2>&1 </dev/null &
    PERF_LAST_PID=$!
    PERF_PIDS+=("$PERF_LAST_PID")
    PERF_PID_NAME[$PERF_LAST_PID]=$name
}

# True when process PID itself holds a listening socket on 127.0.0.1/any:PORT.
# Checking ownership (not just "something accepts on PORT") matters on a shared
# machine: another job may own the port while ours is still retrying bind().
perf_pid_listens() {
    local pid=$1 port=$2 inode fd
    local inodes
    inodes=$(awk -v p="$port" "$PERF_AWK_HEX"'
                 FNR > 1 && $4 == "0A" { n = split($2, a, ":"); if (hex(a[n]) == p) print $10 }' \
             /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    [[ -z $inodes ]] && return 1
    for fd in /proc/"$pid"/fd/*; do
        local target
        target=$(readlink "$fd" 2>/dev/null) || continue
        for inode in $inodes; do
            [[ $target == "socket:[$inode]" ]] && return 0
        done
    done
    return 1
}

# perf_wait_listening PID PORT NAME [TIMEOUT_S]: waits until PID listens on
# PORT; dies with the tail of NAME's log if it exits or times out.
perf_wait_listening() {
    local pid=$1 port=$2 name=$3 timeout_s=${4:-10} i
    for ((i = 0; i < timeout_s * 20; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            perf_log "$name exited before listening on port $port; its output:"
            tail -n 20 "$PERF_TMP/$name.log" >&2
            perf_die "$name failed to start"
        fi
        perf_pid_listens "$pid" "$port" && return 0
        sleep 0.05
    done
    perf_log "$name did not listen on port $port within ${timeout_s}s; its output:"
    tail -n 20 "$PERF_TMP/$name.log" >&2
    perf_die "$name failed to start"
}

# perf_nginx_start NAME CPU PORT HTTP_BLOCK: runs nginx with the given http{}
# contents in its own directory under $PERF_TMP; sets PERF_LAST_PID.
# master_process off: one process that is the worker, so there is exactly one
# pid to pin, watch and stop, and nothing can be orphaned by a killed master.
perf_nginx_start() {
    local name=$1 cpu=$2 port=$3 http_block=$4
    local dir="$PERF_TMP/$name"
    mkdir -p "$dir" || perf_die "cannot create $dir"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 16384;
}
http {
    access_log off;
    # Debian's compiled-in temp paths are under /var/lib/nginx, which only
    # root may create; keep everything inside the run's directory.
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # the proxy under test might not, so lift it to keep the comparison about
    # proxying rather than reconnecting.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
$http_block
}
EOF
    [[ -x $PERF_NGINX_BIN ]] || perf_die "nginx not found at $PERF_NGINX_BIN (apt-get install nginx-light)"
    if ! "$PERF_NGINX_BIN" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1; then
        cat "$dir/test.log" >&2
        perf_die "generated nginx config for $name is invalid ($dir/nginx.conf)"
    fi
    perf_spawn "$name" "$cpu" "$PERF_NGINX_BIN" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf"
    perf_wait_listening "$PERF_LAST_PID" "$port" "$name"
}

# The http{} block of an origin answering every GET with BODY as text/plain.
# BODY must not contain '"', '\' or '$' (nginx string syntax).
perf_nginx_origin_block() {
    local port=$1 body=$2
    cat <<EOF
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 "$body";
        }
    }
EOF
}

# The http{} block of a keep-alive reverse proxy from PORT to UPSTREAM_PORT.
perf_nginx_proxy_block() {
    local port=$1 upstream_port=$2
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$upstream_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
}

# perf_http_get PORT PATH: one GET over bash's /dev/tcp with Connection: close;
# sets PERF_HTTP_STATUS and PERF_HTTP_BODY (de-chunked if needed). Returns 1
# when the connection or the response is unusable.
perf_http_get() {
    local port=$1 path=$2 fd resp head body saved_pipe_trap
    PERF_HTTP_STATUS=""
    PERF_HTTP_BODY=""
    # The braces matter: a bare `exec ... 2>/dev/null` would silence the
    # script's stderr for good.
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    # A server that resets the connection early should get a clear error, not
    # end the script through SIGPIPE; the ignore is undone right away so that
    # processes started later do not inherit it.
    saved_pipe_trap=$(trap -p PIPE)
    trap '' PIPE
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" 1>&"$fd" 2>/dev/null
    eval "${saved_pipe_trap:-trap - PIPE}"
    # -d '' reads to EOF; read then "fails" with status 1, which is expected.
    IFS= read -r -d '' -t 5 -u "$fd" resp 2>/dev/null
    local rc=$?
    exec {fd}>&-
    ((rc > 128)) && return 1
    [[ $resp == *$'\r\n\r\n'* ]] || return 1
    head=${resp%%$'\r\n\r\n'*}
    body=${resp#*$'\r\n\r\n'}
    PERF_HTTP_STATUS=$(awk 'NR == 1 { print $2 }' <<<"$head")
    if grep -qi '^transfer-encoding:[[:space:]]*chunked' <<<"$head"; then
        body=$(perf_dechunk <<<"$body")
    fi
    PERF_HTTP_BODY=$body
    return 0
}

# Reassembles a chunked body from stdin (chunk sizes in hex, CRLF framed).
perf_dechunk() {
    awk "$PERF_AWK_HEX"'
         BEGIN { RS = "\r\n"; ORS = ""; want = -1 }
         want < 0 { sub(/;.*/, ""); want = hex($0); if (want <= 0) exit; next }
         { print; want = -1 }'
}

# perf_check_proxy NAME PORT EXPECTED_BODY: dies unless GET / through PORT
# answers 200 with exactly the origin's body.
perf_check_proxy() {
    local name=$1 port=$2 expected=$3
    perf_http_get "$port" / || perf_die "$name on port $port: no usable HTTP response to GET /"
    [[ $PERF_HTTP_STATUS == 200 ]] ||
        perf_die "$name on port $port: GET / answered $PERF_HTTP_STATUS, expected 200"
    [[ $PERF_HTTP_BODY == "$expected" ]] ||
        perf_die "$name on port $port: GET / body differs from the origin's (${#PERF_HTTP_BODY} bytes, expected ${#expected})"
}

# perf_sluice_start NAME CPU CONF PORT: starts sluice on CONF pinned to CPU
# and waits until it listens on PORT; sets PERF_LAST_PID. Benchmarks start
# each gateway afresh every round: a process keeps its memory layout (and
# its luck with caches) for life, so with the same processes in every round
# a variant could win or lose every round for reasons of its own.
perf_sluice_start() {
    local name=$1 cpu=$2 conf=$3 port=$4
    perf_spawn "$name" "$cpu" "$SLUICE_BIN" -c "$conf"
    perf_wait_listening "$PERF_LAST_PID" "$port" "$name" 10
}

# perf_sluice_stop PID: stops it and forgets it (the round is over).
perf_sluice_stop() {
    perf_stop "$1"
    perf_forget "$1"
}

# perf_wrk CPU URL DURATION CONNECTIONS OUTFILE [SCRIPT]: one wrk run pinned to CPU
# (with the wrk Lua SCRIPT when given);
# its full output goes to OUTFILE. Fails when wrk fails or prints no stats.
perf_wrk() {
    local cpu=$1 url=$2 duration=$3 connections=$4 out=$5 script=()
    local pid rc
    [[ -n ${6:-} ]] && script=(-s "$6")
    # In the background plus `wait`, not in the foreground: wrk catches
    # SIGINT and exits 0 with partial stats, and bash then skips our INT trap
    # for a foreground child, so a Ctrl-C would only cut one run short.
    # shellcheck disable=SC2046
    $(perf_pin "$cpu") wrk -t1 -c"$connections" -d"$duration" --latency "${script[@]}" "$url" >"$out" 2>&1 </dev/null &
    pid=$!
    PERF_PIDS+=("$pid")
    PERF_PID_NAME[$pid]=wrk
    wait "$pid"
    rc=$?
    perf_forget "$pid"
    if ((rc != 0)); then
        perf_log "wrk against $url failed:"
        cat "$out" >&2
        return 1
    fi
    if ! perf_wrk_parse "$out" >/dev/null; then
        perf_log "cannot read wrk's output for $url:"
        cat "$out" >&2
        return 1
    fi
}

# perf_wrk_parse FILE: prints "RPS P50_MS P99_MS ERRORS REQUESTS" from a
# `wrk --latency` report. ERRORS counts non-2xx/3xx answers plus socket
# errors. Fails when the report lacks requests/s or the percentiles.
perf_wrk_parse() {
    awk '
    function ms(v,   n, u) {
        # wrk prints latencies as e.g. 812.00us, 1.25ms, 2.01s, 1.50m, 1.00h
        if (!match(v, /^[0-9.]+/)) return -1
        n = substr(v, 1, RLENGTH) + 0; u = substr(v, RLENGTH + 1)
        if (u == "us") return n / 1000
        if (u == "ms") return n
        if (u == "s")  return n * 1000
        if (u == "m")  return n * 60000
        if (u == "h")  return n * 3600000
        return -1
    }
    /^Requests\/sec:/                    { rps = $2; have_rps = 1 }
    /^ +50%/ && in_dist                  { p50 = ms($2) }
    /^ +99%/ && in_dist                  { p99 = ms($2) }
    /^ +Latency Distribution/            { in_dist = 1 }
    /^ +Non-2xx or 3xx responses:/       { errors += $NF }
    /^ +Socket errors:/ {
        for (i = 3; i <= NF; i += 2) { v = $(i + 1); sub(/,/, "", v); errors += v }
    }
    / requests in /                      { requests = $1 }
    END {
        if (!have_rps || p50 == "" || p99 == "" || p50 < 0 || p99 < 0) exit 1
        printf "%s %.3f %.3f %d %d\n", rps, p50, p99, errors, requests
    }' "$1"
}

# perf_cpu_ticks PID: CPU time (user + system, all threads) the process has
# used so far, in clock ticks (getconf CLK_TCK per second).
perf_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# perf_cpu_us_per_request TICKS REQUESTS: microseconds of CPU per request.
# On a shared machine the proxy's core is not always its own, so requests/s
# moves with the neighbours; CPU time per request moves far less, and for a
# one-worker proxy that saturates its core it is the inverse of throughput.
perf_cpu_us_per_request() {
    awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n + 0 == 0) print "n/a"; else printf "%.2f\n", t * 1e6 / hz / n }'
}

# Gateway variants measured in interleaved rounds against a "none" variant.
# The benchmark defines start_variant VARIANT (starts it afresh, sets
# PERF_VARIANT_PID[VARIANT] and PERF_VARIANT_PORT[VARIANT], warms it up) and
# PERF_WRK_SCRIPT (a wrk Lua script, or empty); results gather per variant
# in PERF_RPS, PERF_P99 and PERF_CPU (space-separated, one per round).
declare -A PERF_VARIANT_PID=() PERF_VARIANT_PORT=() PERF_RPS=() PERF_P99=() PERF_CPU=()
PERF_WRK_SCRIPT=""

# perf_variant_rounds ROUNDS DURATION CONNECTIONS VARIANT...
perf_variant_rounds() {
    local rounds=$1 duration=$2 connections=$3 round v out ticks rps p99 errors requests cpu
    shift 3
    for ((round = 1; round <= rounds; round++)); do
        for v in "$@"; do
            start_variant "$v"
            out="$PERF_TMP/round$round-$v.txt"
            ticks=$(perf_cpu_ticks "${PERF_VARIANT_PID[$v]}")
            perf_wrk "$PERF_CPU_SECOND" "http://127.0.0.1:${PERF_VARIANT_PORT[$v]}/" "$duration" "$connections" \
                "$out" "$PERF_WRK_SCRIPT" || perf_die "measuring $v failed"
            ticks=$(($(perf_cpu_ticks "${PERF_VARIANT_PID[$v]}") - ticks))
            perf_sluice_stop "${PERF_VARIANT_PID[$v]}"
            read -r rps _ p99 errors requests < <(perf_wrk_parse "$out")
            ((errors == 0)) || perf_die "$v had $errors non-2xx or socket errors in round $round"
            cpu=$(perf_cpu_us_per_request "$ticks" "$requests")
            PERF_RPS[$v]+="$rps "
            PERF_P99[$v]+="$p99 "
            PERF_CPU[$v]+="$cpu "
            printf '  round %d %-11s %10.1f req/s  p99 %7.3f ms  %6s us CPU/request\n' "$round" "$v" "$rps" "$p99" "$cpu"
        done
    done
    printf '\nmedian of %d rounds, relative to no plugins (throughput: req/s ratio; CPU: no-plugin CPU per\n' "$rounds"
    printf 'request / this CPU per request, i.e. the throughput ratio of a saturated worker, which neighbours\n'
    printf 'on a shared machine disturb far less):\n'
}

# perf_variant_report VARIANT LABEL [LIMIT]: its medians against "none", with
# PASS/MISS for both ratios when a LIMIT (minimum ratio) is given.
perf_variant_report() {
    local v=$1 label=$2 limit=${3:-} rps p99 cpu ratio cpu_ratio target=""
    # shellcheck disable=SC2086  # the per-round lists are meant to split
    rps=$(perf_median ${PERF_RPS[$v]})
    # shellcheck disable=SC2086
    p99=$(perf_median ${PERF_P99[$v]})
    # shellcheck disable=SC2086
    cpu=$(perf_median ${PERF_CPU[$v]})
    # shellcheck disable=SC2086
    ratio=$(perf_ratio "$rps" "$(perf_median ${PERF_RPS[none]})")
    # shellcheck disable=SC2086
    cpu_ratio=$(perf_ratio "$(perf_median ${PERF_CPU[none]})" "$cpu")
    [ -n "$limit" ] && target="target >= ${limit}x: throughput $(perf_verdict "$ratio" ">=" "$limit"), CPU $(perf_verdict "$cpu_ratio" ">=" "$limit")"
    printf '  %-28s %10.1f req/s %6.3fx  p99 %7.3f ms  %6s us CPU/req %6.3fx  %s\n' "$label" "$rps" "$ratio" "$p99" "$cpu" "$cpu_ratio" "$target"
}

# perf_median V...: the median of the numbers given (mean of the middle two
# for an even count).
perf_median() {
    (($#)) || return 1
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
              else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# perf_ratio A B: A/B to three decimals, or "n/a" when B is zero.
perf_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.3f\n", a / b }'
}

# perf_verdict RATIO OP LIMIT: PASS when RATIO OP LIMIT holds (OP is ">=" or
# "<="), MISS otherwise or when the ratio is n/a.
perf_verdict() {
    awk -v r="$1" -v op="$2" -v lim="$3" 'BEGIN {
        if (r == "n/a") { print "MISS"; exit }
        ok = (op == ">=") ? (r + 0 >= lim + 0) : (r + 0 <= lim + 0)
        print ok ? "PASS" : "MISS" }'
}
