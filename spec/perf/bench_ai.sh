#!/usr/bin/env bash
# sluice's AI gateway (ai-proxy) against the Portkey gateway, both in front of
# the same fast mock OpenAI provider, measured in one run on this machine.
# See spec/perf/README.md (section bench_ai.sh) for how to run and read it.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=spec/perf/lib.sh
source "$HERE/lib.sh"

TARGET_ADDED_P50_US=100
TARGET_ADDED_P99_US=500
TARGET_RPS_RATIO=20
WARMUP=3s
PORTKEY_ENTRY="$HERE/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"

usage() {
    cat <<EOF
usage: $(basename "$0") [--duration 10s] [--connections 50] [--rate 100] [--rounds 1] [--keep]

  --duration D      length of each measured run (10s, 1m; default 10s)
  --connections N   connections of the throughput runs (default 50)
  --rate R          total requests/s of the fixed-rate latency runs, over 4 connections (default 100:
                    it must stay below Portkey's capacity, ~250/s here, or it measures queueing)
  --rounds N        measured rounds; medians are reported (default 1)
  --keep            keep the temp dir with configs, logs and every report

env: SLUICE_BIN (default: build/sluice under the repo root), NGINX_BIN (default /usr/sbin/nginx),
     NODE_BIN (default: node in PATH)
needs: wrk, hey (apt-get install hey), curl, node, and the Portkey gateway installed with
     npm ci --prefix spec/perf/portkey
EOF
}

bad_usage() {
    printf 'error: %s\n' "$1" >&2
    usage >&2
    exit 2
}

duration=10s
connections=50
rate=100
rounds=1
while (($#)); do
    case $1 in
        --duration) (($# >= 2)) || bad_usage "--duration needs a value"; duration=$2; shift 2 ;;
        --duration=*) duration=${1#*=}; shift ;;
        --connections) (($# >= 2)) || bad_usage "--connections needs a value"; connections=$2; shift 2 ;;
        --connections=*) connections=${1#*=}; shift ;;
        --rate) (($# >= 2)) || bad_usage "--rate needs a value"; rate=$2; shift 2 ;;
        --rate=*) rate=${1#*=}; shift ;;
        --rounds) (($# >= 2)) || bad_usage "--rounds needs a value"; rounds=$2; shift 2 ;;
        --rounds=*) rounds=${1#*=}; shift ;;
        --keep) PERF_KEEP_TMP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) bad_usage "unknown argument: $1" ;;
    esac
done
[[ $duration =~ ^[0-9]+[smh]?$ && ! $duration =~ ^0+[smh]?$ ]] ||
    bad_usage "--duration must be a positive whole number with an optional s, m or h suffix, got '$duration'"
[[ $connections =~ ^[1-9][0-9]{0,3}$ && $connections -le 4096 ]] ||
    bad_usage "--connections must be a whole number from 1 to 4096, got '$connections'"
# hey's -q is per connection; with 4 connections the total must split evenly.
[[ $rate =~ ^[1-9][0-9]{0,5}$ && $((rate % 4)) -eq 0 ]] ||
    bad_usage "--rate must be a positive multiple of 4 below 1000000, got '$rate'"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || bad_usage "--rounds must be a whole number from 1 to 99, got '$rounds'"

NODE_BIN=${NODE_BIN:-node}
SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/sluice}
[[ $SLUICE_BIN == /* ]] || SLUICE_BIN="$PWD/$SLUICE_BIN"
[[ -f $SLUICE_BIN && -x $SLUICE_BIN ]] || perf_die "sluice binary not found or not executable: $SLUICE_BIN"
for tool in wrk hey curl taskset "$NODE_BIN"; do
    command -v "$tool" >/dev/null || perf_die "$tool not found"
done
[[ -f $PORTKEY_ENTRY ]] ||
    perf_die "Portkey gateway not installed: run 'npm ci --prefix spec/perf/portkey' ($PORTKEY_ENTRY missing)"

# hey's duration flag wants a Go duration; wrk's bare number means seconds.
hey_duration=$duration
[[ $hey_duration =~ ^[0-9]+$ ]] && hey_duration="${hey_duration}s"

perf_init
# Each gateway gets a core to itself (Portkey is pinned as a whole, its
# libuv and GC threads included, so both are limited to the same one core);
# the mock provider and the load generators, which do far less per request,
# share the other.
CPU_GW=$PERF_CPU_FIRST
CPU_LOAD=$PERF_CPU_SECOND

# The mock's answers: byte-for-byte what the clients must get back, whichever
# way they came. Neither may contain '"', '\' or '$' unescaped for nginx, so
# the JSON quotes are escaped when they go into nginx.conf below.
plain_body='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark mock."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}'
sse_chunk() { printf 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bench","choices":%s,"usage":%s}\n\n' "$1" "$2"; }
stream_body=$(
    sse_chunk '[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]' null
    for word in Hello from the benchmark mock.; do
        sse_chunk '[{"index":0,"delta":{"content":"'"$word"' "},"logprobs":null,"finish_reason":null}]' null
    done
    sse_chunk '[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]' null
    sse_chunk '[]' '{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}'
    printf 'data: [DONE]\n\n'
)
stream_body+=$'\n\n'
# The client asks for the usage chunk itself, so that no gateway has a reason
# to add or drop it and every path answers the very same bytes.
plain_req='{"model":"gpt-bench","messages":[{"role":"user","content":"Say hello."}]}'
stream_req='{"model":"gpt-bench","messages":[{"role":"user","content":"Say hello."}],"stream":true,"stream_options":{"include_usage":true}}'

nginx_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    printf '%s' "$s"
}

perf_free_port; mock_plain_port=$PERF_PORT
perf_free_port; mock_stream_port=$PERF_PORT
perf_free_port; sluice_port=$PERF_PORT
perf_free_port; portkey_port=$PERF_PORT
perf_free_port; nginx_proxy_port=$PERF_PORT

# Two mock ports rather than one that looks at "stream" in the body: nginx's
# `return` never reads the request body, which is what makes it this fast.
mock_block=""
for kind in plain stream; do
    if [[ $kind == plain ]]; then
        port=$mock_plain_port type=application/json body=$plain_body
    else
        port=$mock_stream_port type=text/event-stream body=$stream_body
    fi
    mock_block+="
    server {
        listen 127.0.0.1:$port;
        location = /v1/chat/completions {
            default_type $type;
            return 200 \"$(nginx_string "$body")\";
        }
        location / {
            return 404;
        }
    }"
done
perf_nginx_start mock "$CPU_LOAD" "$mock_plain_port" "$mock_block"
perf_wait_listening "$PERF_LAST_PID" "$mock_stream_port" mock

# The floor of any gateway: nginx as a plain reverse proxy, on the gateways'
# CPU, in front of the plain mock. Its hop (an extra process, a second
# connection, on this VM often a wake-up on the other CPU) is in every
# gateway's "added" figure; the summary also shows sluice beyond it.
perf_nginx_start nginx-proxy "$CPU_GW" "$nginx_proxy_port" \
    "$(perf_nginx_proxy_block "$nginx_proxy_port" "$mock_plain_port")"
GATEWAY_PIDS=("$PERF_LAST_PID")

sluice_conf="$PERF_TMP/sluice.yaml"
cat >"$sluice_conf" <<EOF
listen: 127.0.0.1:$sluice_port
workers: 1
log: {access: off}
routes:
  - name: llm
    match: {paths: ["/v1/*"]}
    plugins:
      - ai-proxy:
          models:
            bench-plain:
              targets: [{provider: openai-compatible, model: gpt-bench, base_url: "http://127.0.0.1:$mock_plain_port"}]
            bench-stream:
              targets: [{provider: openai-compatible, model: gpt-bench, base_url: "http://127.0.0.1:$mock_stream_port"}]
EOF
perf_spawn sluice "$CPU_GW" "$SLUICE_BIN" -c "$sluice_conf"
perf_wait_listening "$PERF_LAST_PID" "$sluice_port" sluice 10
GATEWAY_PIDS+=("$PERF_LAST_PID")

# --headless: no web UI and its log stream, which a benchmark has no use for.
perf_spawn portkey "$CPU_GW" env NODE_ENV=production "$NODE_BIN" "$PORTKEY_ENTRY" --port="$portkey_port" --headless
perf_wait_listening "$PERF_LAST_PID" "$portkey_port" portkey 30
GATEWAY_PIDS+=("$PERF_LAST_PID")

# pin_gateways CPU: moves every gateway (all threads; Portkey's node and its
# children) to CPU. The one-connection latency runs twice: with the gateways
# on their own CPU as everywhere else, where each request crosses CPUs four
# times (client, gateway, mock, gateway, client: on this VM a cross-CPU
# wake-up costs tens of microseconds, and the direct path has none), and
# with everything on the load CPU, which at one connection never needs two
# at once, so the figure is the gateway's own path.
pin_gateways() {
    local pid task
    ((PERF_PIN_CPUS)) || return 0
    for pid in "${GATEWAY_PIDS[@]}"; do
        for task in "$pid" $(pgrep -P "$pid"); do
            taskset -a -p -c "$1" "$task" >/dev/null 2>&1 || true
        done
    done
}

# The three ways to the mock, per kind of response: URL, alias for "model"
# (sluice picks its target by it; the others ignore it), extra headers.
declare -A url_of=() model_of=() headers_of=()
for kind in plain stream; do
    if [[ $kind == plain ]]; then mock_port=$mock_plain_port; else mock_port=$mock_stream_port; fi
    url_of[direct-$kind]="http://127.0.0.1:$mock_port/v1/chat/completions"
    model_of[direct-$kind]=gpt-bench
    headers_of[direct-$kind]=""
    url_of[sluice-$kind]="http://127.0.0.1:$sluice_port/v1/chat/completions"
    model_of[sluice-$kind]=bench-$kind
    headers_of[sluice-$kind]=""
    url_of[nginx-$kind]="http://127.0.0.1:$nginx_proxy_port/v1/chat/completions"
    model_of[nginx-$kind]=gpt-bench
    headers_of[nginx-$kind]=""
    url_of[portkey-$kind]="http://127.0.0.1:$portkey_port/v1/chat/completions"
    model_of[portkey-$kind]=gpt-bench
    headers_of[portkey-$kind]="x-portkey-provider: openai
x-portkey-custom-host: http://127.0.0.1:$mock_port/v1"
done

request_body() { # KIND MODEL
    local req=$plain_req
    [[ $1 == stream ]] && req=$stream_req
    printf '%s' "${req/\"gpt-bench\"/\"$2\"}"
}

# Writes the wrk script for path NAME-KIND and prints its file name.
wrk_script() {
    local key=$1 kind=${1#*-} file="$PERF_TMP/$1.lua" line body
    body=$(request_body "$kind" "${model_of[$key]}")
    {
        printf 'wrk.method = "POST"\n'
        printf 'wrk.headers["Content-Type"] = "application/json"\n'
        printf 'wrk.headers["Authorization"] = "Bearer sk-bench"\n'
        while IFS= read -r line; do
            [[ -n $line ]] && printf 'wrk.headers["%s"] = "%s"\n' "${line%%: *}" "${line#*: }"
        done <<<"${headers_of[$key]}"
        # [==[ ]==] is a Lua long string: the JSON needs no escaping in it.
        printf 'wrk.body = [==[%s]==]\n' "$body"
    } >"$file"
    printf '%s' "$file"
}

# curl options that send exactly what wrk and hey send on path KEY.
curl_args() {
    local key=$1 kind=${1#*-} line
    CURL_ARGS=(-sS --max-time 10 -o "$PERF_TMP/check-$key.body" -w '%{http_code}'
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench')
    while IFS= read -r line; do
        [[ -n $line ]] && CURL_ARGS+=(-H "$line")
    done <<<"${headers_of[$key]}"
    CURL_ARGS+=(--data-binary "$(request_body "$kind" "${model_of[$key]}")" "${url_of[$key]}")
}

# A gateway that answers fast with errors would look great: every path must
# answer 200 with exactly the mock's bytes before anything is timed. Sets
# CHECK_NOTE to why not, and fails, when it does not.
check_path() {
    local key=$1 kind=${1#*-} status expected
    curl_args "$key"
    status=$(curl "${CURL_ARGS[@]}" 2>"$PERF_TMP/check-$key.err") || {
        CHECK_NOTE="no answer ($(head -c 200 "$PERF_TMP/check-$key.err"))"
        return 1
    }
    if [[ $status != 200 ]]; then
        CHECK_NOTE="status $status: $(head -c 300 "$PERF_TMP/check-$key.body")"
        return 1
    fi
    expected=$plain_body
    [[ $kind == stream ]] && expected=$stream_body
    if ! cmp -s "$PERF_TMP/check-$key.body" <(printf '%s' "$expected"); then
        CHECK_NOTE="body differs from the mock's ($(wc -c <"$PERF_TMP/check-$key.body") bytes, expected ${#expected})"
        return 1
    fi
    return 0
}

# bench_wrk CPU KEY DURATION CONNECTIONS OUTFILE: like lib.sh's perf_wrk, with
# the POST script for KEY (perf_wrk only does GET /).
bench_wrk() {
    local cpu=$1 key=$2 dur=$3 conns=$4 out=$5 script pid rc
    script=$(wrk_script "$key")
    # shellcheck disable=SC2046  # the pin prefix is meant to split into words
    $(perf_pin "$cpu") wrk -t1 -c"$conns" -d"$dur" --latency -s "$script" "${url_of[$key]}" \
        >"$out" 2>&1 </dev/null &
    pid=$!
    PERF_PIDS+=("$pid")
    PERF_PID_NAME[$pid]=wrk
    wait "$pid"
    rc=$?
    perf_forget "$pid"
    if ((rc != 0)) || ! perf_wrk_parse "$out" >/dev/null; then
        perf_log "wrk on $key failed or printed no usable report:"
        cat "$out" >&2
        return 1
    fi
}

# bench_hey CPU KEY OUTFILE: the fixed-rate run, $rate req/s in total.
bench_hey() {
    local cpu=$1 key=$2 out=$3 kind=${2#*-} pid rc line args=()
    while IFS= read -r line; do
        [[ -n $line ]] && args+=(-H "$line")
    done <<<"${headers_of[$key]}"
    # shellcheck disable=SC2046
    $(perf_pin "$cpu") hey -q $((rate / 4)) -c 4 -z "$hey_duration" -m POST -T application/json \
        -H 'Authorization: Bearer sk-bench' "${args[@]}" -d "$(request_body "$kind" "${model_of[$key]}")" \
        "${url_of[$key]}" >"$out" 2>&1 </dev/null &
    pid=$!
    PERF_PIDS+=("$pid")
    PERF_PID_NAME[$pid]=hey
    wait "$pid"
    rc=$?
    perf_forget "$pid"
    if ((rc != 0)) || ! hey_parse "$out" >/dev/null; then
        perf_log "hey on $key failed or printed no usable report:"
        cat "$out" >&2
        return 1
    fi
}

# hey_parse FILE: prints "RPS P50_MS P99_MS ERRORS" from hey's report. ERRORS
# counts answers other than 200 plus hey's error lines.
hey_parse() {
    awk '
    /^ +Requests\/sec:/              { rps = $2; have_rps = 1 }
    /^ +50% in /                     { p50 = $3 * 1000 }
    /^ +99% in /                     { p99 = $3 * 1000 }
    /^Status code distribution:/     { in_status = 1; next }
    /^Error distribution:/           { in_status = 0; in_err = 1; next }
    in_status && /^ +\[[0-9]+\]/     { code = $1; gsub(/[][]/, "", code); if (code != 200) errors += $2 }
    in_err && /^ +\[[0-9]+\]/        { n = $1; gsub(/[][]/, "", n); errors += n }
    END {
        if (!have_rps || p50 == "" || p99 == "") exit 1
        printf "%s %.3f %.3f %d\n", rps, p50, p99, errors
    }' "$1"
}

printf 'sluice ai-proxy vs Portkey gateway %s, both in front of one nginx mock OpenAI provider\n' \
    "$(awk -F'"' '$2 == "version" { print $4; exit }' "$HERE/portkey/node_modules/@portkey-ai/gateway/package.json")"
if ((PERF_PIN_CPUS)); then
    printf 'pinning: the gateway under test and the nginx reference proxy on CPU %s; mock nginx, wrk and hey on CPU %s\n' "$CPU_GW" "$CPU_LOAD"
else
    printf 'pinning: none (fewer than 2 CPUs)\n'
fi
printf 'runs: %s each, %d round(s); latency at 1 connection (wrk) and at %d req/s over 4 (hey);\n' \
    "$duration" "$rounds" "$rate"
printf '      throughput at %d connections (wrk)\n\n' "$connections"

# Which paths work decides what is measured: the mock and sluice must, while
# Portkey failing one kind (say, streaming) is a finding to report.
declare -A usable=()
PORTKEY_NOTE=""
for kind in plain stream; do
    for gw in direct nginx sluice portkey; do
        key=$gw-$kind
        [[ $gw == nginx && $kind == stream ]] && continue   # the reference proxies the plain mock only
        if check_path "$key"; then
            usable[$key]=1
        elif [[ $gw == portkey ]]; then
            perf_log "warning: Portkey cannot do $kind responses here: $CHECK_NOTE"
            PORTKEY_NOTE+="  Portkey, $kind: not measured: $CHECK_NOTE"$'\n'
            # Its log says why; "Something went wrong" alone does not.
            why=$(grep -a -m1 -o 'TypeError: .*\|Error: .*' "$PERF_TMP/portkey.log")
            [[ -n $why ]] && PORTKEY_NOTE+="    Portkey's log: $why"$'\n'
        else
            perf_die "$gw, $kind response: $CHECK_NOTE"
        fi
    done
done

paths() { # KIND: the usable paths of that kind, in measuring order
    local gw
    for gw in direct nginx sluice portkey; do
        [[ -n ${usable[$gw-$1]:-} ]] && printf '%s ' "$gw-$1"
    done
}

for key in $(paths plain) $(paths stream); do
    printf 'warming up %s...\n' "$key"
    bench_wrk "$CPU_LOAD" "$key" "$WARMUP" "$connections" "$PERF_TMP/warmup-$key.txt" ||
        perf_die "warm-up of $key failed"
done

# Per path and test, the per-round figures, space separated.
declare -A rps=() p50=() p99=() errs=()
record() { # TEST KEY RPS P50 P99 ERRORS
    rps[$1/$2]+="$3 "
    p50[$1/$2]+="$4 "
    p99[$1/$2]+="$5 "
    errs[$1/$2]+="$6 "
}

one_connection_round() { # TEST LABEL: every plain path at one connection
    local key out r a b e
    for key in $(paths plain); do
        printf 'round %d/%d: %s: %s...\n' "$round" "$rounds" "$2" "$key"
        out="$PERF_TMP/round$round-$1-$key.txt"
        bench_wrk "$CPU_LOAD" "$key" "$duration" 1 "$out" || perf_die "measuring $key failed"
        read -r r a b e _ < <(perf_wrk_parse "$out")
        record "$1" "$key" "$r" "$a" "$b" "$e"
    done
}

for ((round = 1; round <= rounds; round++)); do
    # Paths interleaved within each test, so that a neighbour's load on this
    # shared machine lands on all of them rather than biasing one.
    one_connection_round c1 "latency, 1 connection"
    pin_gateways "$CPU_LOAD"
    one_connection_round c1same "latency, 1 connection, one CPU"
    pin_gateways "$CPU_GW"
    for key in $(paths plain); do
        printf 'round %d/%d: latency, %d req/s: %s...\n' "$round" "$rounds" "$rate" "$key"
        out="$PERF_TMP/round$round-rate-$key.txt"
        bench_hey "$CPU_LOAD" "$key" "$out" || perf_die "measuring $key failed"
        read -r r a b e < <(hey_parse "$out")
        record rate "$key" "$r" "$a" "$b" "$e"
    done
    for key in $(paths plain) $(paths stream); do
        printf 'round %d/%d: throughput, %d connections: %s...\n' "$round" "$rounds" "$connections" "$key"
        out="$PERF_TMP/round$round-tput-$key.txt"
        bench_wrk "$CPU_LOAD" "$key" "$duration" "$connections" "$out" || perf_die "measuring $key failed"
        read -r r a b e _ < <(perf_wrk_parse "$out")
        record tput "$key" "$r" "$a" "$b" "$e"
    done
done

# shellcheck disable=SC2086  # the per-round lists are meant to split
median_of() { perf_median $1; }
sum_of() { awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }' <<<"$1"; }
us() { awk -v v="$1" 'BEGIN { printf "%.0f", v * 1000 }'; }
minus_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a - b) * 1000 }'; }
at_most() { awk -v v="$1" -v l="$2" 'BEGIN { print (v + 0 <= l + 0) ? "PASS" : "MISS" }'; }

# Errors on any path void its figures; sluice's verdicts say so.
total_errors() { # GW: errors of every measured run of that gateway
    local t k n=0
    for t in c1 c1same rate tput; do
        for k in "$1-plain" "$1-stream"; do
            [[ -n ${errs[$t/$k]:-} ]] && n=$((n + $(sum_of "${errs[$t/$k]}")))
        done
    done
    printf '%d' "$n"
}

printf '\nmedian of %d round(s); added = the gateway'"'"'s figure minus direct-to-mock'"'"'s\n\n' "$rounds"
printf '  %-28s %-8s %10s %10s %10s %12s %12s %7s\n' test path "req/s" "p50 us" "p99 us" "added p50" "added p99" errors
for test in c1 c1same rate tput-plain tput-stream; do
    case $test in
        c1) label="latency, 1 conn (wrk)"; t=c1; kind=plain ;;
        c1same) label="latency, 1 conn, one CPU"; t=c1same; kind=plain ;;
        rate) label="latency, $rate req/s (hey)"; t=rate; kind=plain ;;
        tput-plain) label="throughput, $connections conns, plain"; t="tput"; kind=plain ;;
        tput-stream) label="throughput, $connections conns, stream"; t="tput"; kind=stream ;;
    esac
    d50=$(median_of "${p50[$t/direct-$kind]}")
    d99=$(median_of "${p99[$t/direct-$kind]}")
    for gw in direct nginx sluice portkey; do
        key=$gw-$kind
        [[ $gw == nginx && $kind == stream ]] && continue
        if [[ -z ${rps[$t/$key]:-} ]]; then
            printf '  %-28s %-8s %10s\n' "$label" "$gw" "not measured"
            continue
        fi
        m_rps=$(median_of "${rps[$t/$key]}")
        m50=$(median_of "${p50[$t/$key]}")
        m99=$(median_of "${p99[$t/$key]}")
        add50="" add99=""
        if [[ $gw != direct ]]; then
            add50=$(minus_us "$m50" "$d50")
            add99=$(minus_us "$m99" "$d99")
        fi
        printf '  %-28s %-8s %10.0f %10s %10s %12s %12s %7d\n' "$label" "$gw" "$m_rps" "$(us "$m50")" \
            "$(us "$m99")" "$add50" "$add99" "$(sum_of "${errs[$t/$key]}")"
        # Kept for the summary below.
        printf -v "res_${t}_${gw}_${kind}_rps" '%s' "$m_rps"
        printf -v "res_${t}_${gw}_${kind}_add50" '%s' "$add50"
        printf -v "res_${t}_${gw}_${kind}_add99" '%s' "$add99"
    done
done

sluice_err=$(total_errors sluice)
verdict() { # PASS/MISS VALUE... : MISS (errors) overrides when sluice dropped requests
    if ((sluice_err > 0)); then printf 'MISS (errors)'; else printf '%s' "$1"; fi
}
ratio_line() { # KIND
    local s_var="res_tput_sluice_$1_rps" p_var="res_tput_portkey_$1_rps" ratio
    if [[ -z ${!p_var:-} ]]; then
        printf '  %-40s %9s   target >= %dx   %s\n' "throughput sluice/Portkey, $1" "n/a" \
            "$TARGET_RPS_RATIO" "(Portkey not measured)"
        return
    fi
    ratio=$(perf_ratio "${!s_var}" "${!p_var}")
    printf '  %-40s %9s   target >= %dx   %s\n' "throughput sluice/Portkey, $1" "${ratio}x" \
        "$TARGET_RPS_RATIO" "$(verdict "$(perf_verdict "$ratio" ">=" "$TARGET_RPS_RATIO")")"
}

printf '\n'
for t in c1 c1same rate; do
    case $t in
        c1) where="1 conn" ;;
        c1same) where="1 conn, one CPU" ;;
        *) where="$rate req/s" ;;
    esac
    for gw in sluice portkey; do
        a50_var="res_${t}_${gw}_plain_add50"
        a99_var="res_${t}_${gw}_plain_add99"
        [[ -n ${!a50_var:-} ]] || continue
        if [[ $gw == sluice ]]; then
            printf '  %-40s %6s us   target <= %d us   %s\n' "sluice added p50, $where" "${!a50_var}" \
                "$TARGET_ADDED_P50_US" "$(verdict "$(at_most "${!a50_var}" "$TARGET_ADDED_P50_US")")"
            printf '  %-40s %6s us   target <= %d us   %s\n' "sluice added p99, $where" "${!a99_var}" \
                "$TARGET_ADDED_P99_US" "$(verdict "$(at_most "${!a99_var}" "$TARGET_ADDED_P99_US")")"
            n50_var="res_${t}_nginx_plain_add50"
            n99_var="res_${t}_nginx_plain_add99"
            if [[ -n ${!n50_var:-} ]]; then
                printf '  %-40s %6s us\n' "nginx proxy hop added p50, $where" "${!n50_var}"
                printf '  %-40s %6s us\n' "nginx proxy hop added p99, $where" "${!n99_var}"
                printf '  %-40s %6s us\n' "sluice beyond the nginx hop, p50, $where" "$((${!a50_var} - ${!n50_var}))"
                printf '  %-40s %6s us\n' "sluice beyond the nginx hop, p99, $where" "$((${!a99_var} - ${!n99_var}))"
            fi
        else
            printf '  %-40s %6s us\n' "Portkey added p50, $where" "${!a50_var}"
            printf '  %-40s %6s us\n' "Portkey added p99, $where" "${!a99_var}"
        fi
    done
done
ratio_line plain
ratio_line stream
[[ -n $PORTKEY_NOTE ]] && printf '\n%s' "$PORTKEY_NOTE"
if ((sluice_err > 0 || $(total_errors portkey) > 0 || $(total_errors direct) > 0)); then
    printf '\nwarning: some runs had errors (non-2xx/3xx answers, socket errors); rerun with --keep and\n'
    printf 'read the round*.txt reports and the gateways'"'"' logs.\n'
fi
exit 0
