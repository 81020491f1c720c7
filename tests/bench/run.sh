#!/usr/bin/env bash
# tests/bench/run.sh: builds what the benchmarks need (Release), runs every
# benchmark of issue #8 against one private redis-server, and prints the
# results table (absolute figures and ratios to the baselines run in the same
# script). See tests/bench/README.md.
#
#   bash tests/bench/run.sh            # everything, ~4 minutes after the build
#   bash tests/bench/run.sh --publish  # also copy the table and the plot into
#                                      # tests/bench/results/ (for the README)
#
# Environment:
#   SCEPCA_BENCH_BUILD    build directory (default: <repo>/build-bench)
#   SCEPCA_BENCH_OUT      results directory (default: $SCEPCA_BENCH_BUILD/bench-results)
#   BENCH_SECONDS         measured seconds per load run (default 2)
#   BENCH_SWEEP_SECONDS   measured seconds per point of the sweep (default 1.5)
#   BENCH_WARMUP          warm-up seconds per load run (default 0.5)
#   BENCH_REPS            repetitions of the concurrency-64 table (default 2)
#   BENCH_GROWTH_COUNT    outstanding challenges for the growth test (1000000)
#   BENCH_PHASES          which phases to run (default: all of
#                         redis,c64,profile,sweep,growth,micro)
#   SCEPCA_BENCH_BEFORE   a challenge-authority binary to compare with (e.g.
#                         built from an older commit): its rows are added to
#                         the concurrency-64 table as "before"
#   SCEPCA_BENCH_BEFORE_LABEL  what to call it in the table (e.g. a commit)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${SCEPCA_BENCH_BUILD:-$ROOT/build-bench}
OUT=${SCEPCA_BENCH_OUT:-$BUILD/bench-results}
SECONDS_PER_RUN=${BENCH_SECONDS:-2}
WARMUP=${BENCH_WARMUP:-0.5}
REPS=${BENCH_REPS:-2}
GROWTH=${BENCH_GROWTH_COUNT:-1000000}
PUBLISH=0
[[ ${1:-} == --publish ]] && PUBLISH=1
PY=/usr/bin/python3
PHASES=,${BENCH_PHASES:-redis,c64,profile,sweep,growth,micro},
phase() { [[ $PHASES == *",$1,"* ]]; }

log() { printf '\n== %s (%ds)\n' "$*" "$SECONDS" >&2; }

# --- Dependencies and build ---------------------------------------------------
missing=()
for pkg_bin in redis-server:redis-server redis-benchmark:redis-tools \
               redis-cli:redis-tools; do
  command -v "${pkg_bin%%:*}" >/dev/null || missing+=("${pkg_bin#*:}")
done
$PY -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
dpkg -s libbenchmark-dev >/dev/null 2>&1 || missing+=(libbenchmark-dev)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  if [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  else
    echo "run as root or install: ${missing[*]}" >&2
    exit 1
  fi
fi

log "building (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSCEPCA_BENCH=ON \
  >/dev/null
cmake --build "$BUILD" -j2 --target challenge-authority scepca_loadgen \
  scepca_baseline_server scepca_bench_redis scepca_micro_bench >&2
# challengectl only makes the key file; a hand-made one does as well.
cmake --build "$BUILD" -j2 --target challengectl >/dev/null 2>&1 || true
SECONDS=0  # The budget counts from here.

LOADGEN=$BUILD/tests/bench/scepca_loadgen
BASELINE=$BUILD/tests/bench/scepca_baseline_server
SEED=$BUILD/tests/bench/scepca_bench_redis
MICRO=$BUILD/tests/bench/scepca_micro_bench
AUTHORITY=$BUILD/service/challenge-authority
CTL=$BUILD/client/challengectl

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d /tmp/scepca-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until $1 (a log file) has a line matching $2; prints the match.
wait_for_log() {
  for _ in $(seq 100); do
    if grep -m1 -oE "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

# Records one JSON object (a line) with extra fields merged in.
record() {  # record '{"phase":...}' < json-line
  $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(json.loads(sys.argv[1])); print(json.dumps(d))' "$1" \
    | tee -a "$RESULTS" | $PY -c '
import json, sys
d = json.loads(sys.stdin.read())
if "throughput" in d:
    c = d.get("cpu_us_per_call", {})
    print("  %-26s %-22s c=%-3s %9.0f/s  p50 %7.0f  p99 %7.0f us  cpu/call %5.1f us%s" % (
        d.get("server", ""), d.get("scenario", ""), d.get("concurrency", ""),
        d["throughput"], d["p50_us"], d["p99_us"], sum(c.values()),
        ("  ERRORS %d refused %d: %s" % (d["errors"], d["refused"], d["problem"][:80]))
        if d["errors"] or d["refused"] else ""), file=sys.stderr)
else:
    print("  " + json.dumps(d), file=sys.stderr)'
}

# --- Redis and the servers -----------------------------------------------------
log "starting redis-server, the authority and the baselines"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
  --unixsocket "$WORK/redis.sock" --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do
  redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
REDIS_URL=redis://127.0.0.1:$RPORT
rcli() { redis-cli -p "$RPORT" "$@"; }
rcli set bench:value "$(head -c 300 /dev/zero | tr '\0' x)" >/dev/null

if ! "$CTL" keys generate --file "$WORK/keys" >/dev/null 2>&1; then
  # The key file format (README, "Key file and rotation"), mode 0600.
  (umask 077 && printf 'key %d primary %s\n' $((RANDOM * 32768 + RANDOM + 1)) \
    "$(head -c 32 /dev/urandom | base64 -w0)" >"$WORK/keys")
fi

declare -A PORT PID
start_authority() {  # name binary
  "$2" --listen 127.0.0.1:0 --store "$REDIS_URL" --hmac-keys "$WORK/keys" \
    >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  PIDS+=("${PID[$1]}")
  PORT[$1]=$(wait_for_log "$WORK/$1.log" 'listening on 127\.0\.0\.1:[0-9]+' |
    grep -oE '[0-9]+$')
}
start_baseline() {  # name api [flags]
  local name=$1 api=$2
  shift 2
  "$BASELINE" --listen=127.0.0.1:0 --api="$api" --redis-host=127.0.0.1 \
    --redis-port="$RPORT" "$@" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=("${PID[$name]}")
  PORT[$name]=$(wait_for_log "$WORK/$name.log" 'port [0-9]+' |
    grep -oE '[0-9]+$')
}
start_authority authority "$AUTHORITY"
if [[ -n ${SCEPCA_BENCH_BEFORE:-} ]]; then
  start_authority before "$SCEPCA_BENCH_BEFORE"
fi
start_baseline base_async async      # The authority's threading model.
start_baseline base_callback callback  # Callback API + pipelined Redis.
start_baseline base_sync sync --max-threads=64  # gRPC's sync server.

# Runs the load generator. run SERVER SCENARIO CONCURRENCY PHASE [loadgen flags]
run() {
  local server=$1 scenario=$2 c=$3 phase=$4
  shift 4
  local channels=$((c < 4 ? c : 4))
  local out
  if ! out=$("$LOADGEN" --target=127.0.0.1:"${PORT[$server]}" \
      --concurrency="$c" --channels="$channels" --duration="$SECONDS_PER_RUN" \
      --warmup="$WARMUP" --watch=server:"${PID[$server]}",redis:"$REDIS_PID" \
      --label="$server/$scenario" "$@"); then
    [[ -n $out ]] || { echo "loadgen failed: $server $scenario" >&2; return 0; }
  fi
  printf '%s\n' "$out" | record "$(printf '{"phase":"%s","server":"%s","scenario":"%s"}' "$phase" "$server" "$scenario")"
}

# Fresh outstanding challenges for a validate run: FLUSHALL, then N clones of
# one challenge issued through the store (see redis_seed.cc).
seed() {  # count file
  "$SEED" seed --store="$REDIS_URL" --count="$1" --out="$2" --flush >/dev/null
}

# Runs a scenario on the authority (or "before"), seeding what it needs.
run_scenario() {  # server scenario concurrency phase
  local server=$1 scenario=$2 c=$3 phase=$4
  local expected=$((c >= 16 ? 40000 : 12000))
  case $scenario in
    issue_signed) run "$server" "$scenario" "$c" "$phase" --rpc=issue_signed ;;
    issue_onetime)
      rcli flushall >/dev/null
      run "$server" "$scenario" "$c" "$phase" --rpc=issue_onetime ;;
    validate_onetime | validate_onetime_tx)
      seed "$expected" "$WORK/challenges"
      run "$server" "$scenario" "$c" "$phase" --rpc=validate_onetime \
        --challenges="$WORK/challenges" \
        $([[ $scenario == *_tx ]] && echo --tx) ;;
    validate_onetime_csr)
      seed 8000 "$WORK/challenges"
      run "$server" "$scenario" "$c" "$phase" --rpc=validate_onetime --csr \
        --challenges="$WORK/challenges" ;;
    validate_signed)
      rcli flushall >/dev/null
      run "$server" "$scenario" "$c" "$phase" --rpc=validate_signed \
        --hmac-keys="$WORK/keys" --pool=$((expected * 2)) ;;
    validate_signed_csr)
      rcli flushall >/dev/null
      run "$server" "$scenario" "$c" "$phase" --rpc=validate_signed --csr \
        --hmac-keys="$WORK/keys" --pool=8000 ;;
    mix)
      rcli flushall >/dev/null
      run "$server" "$scenario" "$c" "$phase" --rpc=mix ;;
  esac
  rcli set bench:value "$(head -c 300 /dev/zero | tr '\0' x)" >/dev/null
}

# --- Redis alone ----------------------------------------------------------------
if phase redis; then
log "redis-benchmark: the commands the store uses, 64 clients"
seed 1000 "$WORK/challenges"
RECORD_KEY=$(rcli --scan --pattern 'scep:c:*' | head -1 || true)
DEVICE_KEY=$(rcli --scan --pattern 'scep:d:*' | head -1 || true)
rb() {  # name command...
  local name=$1
  shift
  local rps
  rps=$(redis-benchmark -p "$RPORT" -c 64 -n 100000 -q "$@" 2>/dev/null |
    grep -oE '[0-9.]+ requests per second' | head -1 | grep -oE '^[0-9.]+')
  printf '{"requests_per_second":%s}\n' "${rps:-0}" |
    record "$(printf '{"phase":"redis","command":"%s"}' "$name")"
}
rb "GET (baseline)" GET bench:value
rb "SET PX (IndexTransaction)" SET bench:tx v PX 60000
rb "HGETALL record (Get)" HGETALL "$RECORD_KEY"
rb "HMGET marker (RevokedBefore)" HMGET "${DEVICE_KEY}:rb" rb fa
rb "EVAL HMGET+HSET (like the consume script)" EVAL \
  "local f=redis.call('HMGET',KEYS[1],'state','expires_at','forget_at','cn','dns','email','uris') redis.call('HSET',KEYS[1],'used_tx',ARGV[1]) return 1" \
  1 "$RECORD_KEY" tx
rb "EVAL HMGET+HSET+HGETALL in Lua (the consume script before)" EVAL \
  "local f=redis.call('HMGET',KEYS[1],'state','expires_at','forget_at') redis.call('HSET',KEYS[1],'used_tx',ARGV[1]) return {1,redis.call('HGETALL',KEYS[1])}" \
  1 "$RECORD_KEY" tx
fi

# --- Concurrency 64: the targets --------------------------------------------------
SCENARIOS=(issue_signed issue_onetime validate_onetime validate_onetime_tx
  validate_onetime_csr validate_signed validate_signed_csr mix)
phase c64 || REPS=0
for rep in $(seq "$REPS"); do
  log "concurrency 64, repetition $rep of $REPS"
  for b in base_async base_callback base_sync; do
    run "$b" empty 64 c64 --rpc=empty
    run "$b" get 64 c64 --rpc=get
  done
  for s in "${SCENARIOS[@]}"; do
    run_scenario authority "$s" 64 c64
    if [[ -n ${SCEPCA_BENCH_BEFORE:-} ]]; then
      run_scenario before "$s" 64 c64
    fi
  done
  # The baselines once more, so each authority figure has one near it.
  run base_async get 64 c64 --rpc=get
  run base_async empty 64 c64 --rpc=empty
done
rcli info commandstats >"$OUT/redis_commandstats.txt" || true

# --- Profile (perf, if this machine allows it) ---------------------------------------
# System calls and context switches per call in the server, and where its CPU
# time goes (by library), for the authority's Validate and the GET baseline.
if phase profile &&
   perf stat -e context-switches,raw_syscalls:sys_enter true >/dev/null 2>&1; then
  log "profile (perf)"
  profile() {  # server scenario loadgen-flags...
    local server=$1 scenario=$2
    shift 2
    "$LOADGEN" --target=127.0.0.1:"${PORT[$server]}" --concurrency=64 \
      --channels=4 --warmup=0.5 --duration=3.5 \
      --watch=server:"${PID[$server]}",redis:"$REDIS_PID" "$@" \
      >"$WORK/profile.json" &
    local lg=$!
    sleep 1
    perf stat -x, -e raw_syscalls:sys_enter,context-switches \
      -p "${PID[$server]}" -- sleep 2 2>"$WORK/perf-stat.txt" >/dev/null || true
    local record=""
    if [[ $scenario == validate_onetime || $scenario == get ]]; then
      perf record -q -F 1999 -p "${PID[$server]}" -o "$WORK/perf.data" \
        -- sleep 1.5 >/dev/null 2>&1 || true
      record=$(perf report -i "$WORK/perf.data" --no-children --sort dso \
        --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 |
        awk '{printf "%s%s=%s", (NR>1?";":""), $2, $1}' || true)
    fi
    wait "$lg" || true
    $PY - "$WORK/profile.json" "$WORK/perf-stat.txt" "$server" "$scenario" \
      "$record" <<'PYEOF' | tee -a "$RESULTS" >&2
import json, sys
run = json.load(open(sys.argv[1]))
counts = {}
for line in open(sys.argv[2]):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].replace(".", "").isdigit():
        counts[parts[2]] = float(parts[0])
calls = run["throughput"] * 2  # perf stat covered 2 s of the window.
out = {"phase": "profile", "server": sys.argv[3], "scenario": sys.argv[4],
       "throughput": run["throughput"],
       "syscalls_per_call": counts.get("raw_syscalls:sys_enter", 0) / calls if calls else 0,
       "context_switches_per_call": counts.get("context-switches", 0) / calls if calls else 0,
       "cpu_us_per_call": run.get("cpu_us_per_call", {})}
if sys.argv[5]:
    out["server_cpu_by_library"] = dict(kv.split("=") for kv in sys.argv[5].split(";"))
print(json.dumps(out))
PYEOF
  }
  profile base_async get --rpc=get
  profile base_async empty --rpc=empty
  seed 40000 "$WORK/challenges"
  profile authority validate_onetime --rpc=validate_onetime \
    --challenges="$WORK/challenges"
  rcli set bench:value "$(head -c 300 /dev/zero | tr '\0' x)" >/dev/null
  profile authority issue_signed --rpc=issue_signed
fi

# --- Concurrency sweep (the plot) -------------------------------------------------
phase sweep && log "concurrency sweep"
SECONDS_PER_RUN_C64=$SECONDS_PER_RUN
SECONDS_PER_RUN=${BENCH_SWEEP_SECONDS:-1.5}
for c in $(phase sweep && echo 1 4 16 64 256); do
  run base_async empty "$c" sweep --rpc=empty
  run base_async get "$c" sweep --rpc=get
  run base_callback get "$c" sweep --rpc=get
  run_scenario authority issue_signed "$c" sweep
  run_scenario authority validate_onetime "$c" sweep
done

SECONDS_PER_RUN=$SECONDS_PER_RUN_C64

# --- Growth -----------------------------------------------------------------------
if phase growth; then
log "growth: Redis memory per outstanding challenge, Validate latency"
used_memory() { rcli info memory | grep -oE '^used_memory:[0-9]+' | cut -d: -f2; }
growth_validate() {  # outstanding file count
  "$LOADGEN" --target=127.0.0.1:"${PORT[authority]}" --rpc=validate_onetime \
    --challenges="$2" --count="$3" --concurrency=4 --channels=1 \
    --watch=server:"${PID[authority]}",redis:"$REDIS_PID" \
    --label="validate with $1 outstanding" |
    record "$(printf '{"phase":"growth","outstanding":%s}' "$1")"
}
# 1,000 outstanding: validate all of them; twice.
for round in 1 2; do
  "$SEED" seed --store="$REDIS_URL" --count=1000 --out="$WORK/g1k" \
    --flush >/dev/null
  growth_validate 1000 "$WORK/g1k" 1000
done
rcli flushall >/dev/null
sleep 0.5
before=$(used_memory)
"$SEED" seed --store="$REDIS_URL" --count="$GROWTH" --out="$WORK/gbig" \
  --out-limit=4000 |
  record '{"phase":"growth_fill","method":"clones of one store-written challenge, pipelined"}'
sleep 1
after=$(used_memory)
printf '{"bytes_per_challenge":%s,"count":%s,"used_memory_before":%s,"used_memory_after":%s}\n' \
  "$(( (after - before) / GROWTH ))" "$GROWTH" "$before" "$after" |
  record '{"phase":"growth_memory","method":"clone"}'
growth_validate "$GROWTH" "$WORK/gbig" 2000
# Cross-check with the store API in bulk (no cloning): 20,000 real issues.
rcli flushall >/dev/null
sleep 0.5
before=$(used_memory)
"$SEED" issue --store="$REDIS_URL" --count=20000 --threads=8 |
  record '{"phase":"growth_fill","method":"ChallengeAuthority::Issue on the Redis store"}'
after=$(used_memory)
printf '{"bytes_per_challenge":%s,"count":20000,"used_memory_before":%s,"used_memory_after":%s}\n' \
  "$(( (after - before) / 20000 ))" "$before" "$after" |
  record '{"phase":"growth_memory","method":"store API"}'
rcli flushall >/dev/null
fi

# --- Micro-benchmarks -------------------------------------------------------------
if phase micro; then
log "micro-benchmarks (Google Benchmark)"
SCEPCA_BENCH_REDIS=$REDIS_URL "$MICRO" --benchmark_min_time=0.1 \
  --benchmark_format=json --benchmark_out="$OUT/micro.json" \
  --benchmark_out_format=json >/dev/null 2>"$WORK/micro.err" ||
  { cat "$WORK/micro.err" >&2; }
fi

# --- Report -----------------------------------------------------------------------
log "report"
ELAPSED=$SECONDS
$PY "$HERE/report.py" --results "$RESULTS" --micro "$OUT/micro.json" \
  --out "$OUT" --elapsed "$ELAPSED" --reps "$REPS" \
  --seconds "$SECONDS_PER_RUN"
if ((PUBLISH)); then
  mkdir -p "$HERE/results"
  cp "$OUT/results.md" "$OUT/throughput_p99.png" "$RESULTS" "$HERE/results/"
  echo "published to $HERE/results/" >&2
fi
echo "total: ${ELAPSED}s after the build; results in $OUT" >&2
