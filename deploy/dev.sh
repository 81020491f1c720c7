#!/usr/bin/env bash
# Sets up a Debian 12 machine for SCEP Challenge Authority, builds it, and runs
# the service or the tests. Run as root (or with sudo) from anywhere.
#
#   deploy/dev.sh run         install packages, build, run the server (memory store)
#   deploy/dev.sh test        install packages, build, run every test (ctest)
#   deploy/dev.sh test-asan   the same under AddressSanitizer + UBSan
#   deploy/dev.sh format      check clang-format (Google style) on all sources
#   deploy/dev.sh fuzz        build the libFuzzer targets with clang and run
#                             each for $FUZZ_SECONDS (30) seconds
#   deploy/dev.sh deps        only install the Debian packages
#
# Extra arguments after "run" go to challenge-authority, e.g.
#   deploy/dev.sh run --listen 127.0.0.1:50051 --store redis://127.0.0.1:6379
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-$(nproc)}

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev libhiredis-dev libabsl-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-tools clang-format scep python3 python3-yaml
)

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
      || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build DIR [cmake args...]
build() {
  local dir=$1
  shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

run_tests() {
  local dir=$1
  (cd "$dir" && SCEPCA_REQUIRE_REDIS=1 SCEPCA_REQUIRE_SCEP=1 ctest --output-on-failure \
      -j"$JOBS" --timeout 300)
}

FUZZ_PACKAGES=(clang libclang-rt-14-dev)

fuzz() {
  PACKAGES+=("${FUZZ_PACKAGES[@]}")
  deps
  local dir=$ROOT/build-fuzz
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$dir" -j"$JOBS" --target csr_fuzzer token_fuzzer \
    csr_fuzzer_smoke token_fuzzer_smoke
  for target in csr token; do
    local corpus=$dir/corpus-$target
    rm -rf "$corpus" && mkdir -p "$corpus"
    "$dir/tests/fuzz/${target}_fuzzer_smoke" --write-corpus "$corpus" >/dev/null
    echo "== fuzzing ${target} for ${FUZZ_SECONDS:-30}s"
    "$dir/tests/fuzz/${target}_fuzzer" -max_total_time="${FUZZ_SECONDS:-30}" \
      -rss_limit_mb=4096 -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
    test "${PIPESTATUS[0]}" -eq 0
  done
}

case "${1:-}" in
  deps) deps ;;
  run)
    shift
    deps
    build "$ROOT/build"
    exec "$ROOT/build/service/challenge-authority" "$@"
    ;;
  test)
    deps
    build "$ROOT/build"
    run_tests "$ROOT/build"
    ;;
  test-asan)
    deps
    build "$ROOT/build-asan" -DSCEPCA_SANITIZE=address,undefined
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      run_tests "$ROOT/build-asan"
    ;;
  format)
    deps
    cd "$ROOT"
    git ls-files '*.h' '*.cc' | xargs clang-format --dry-run -Werror
    echo "clang-format: clean"
    ;;
  fuzz) fuzz ;;
  *)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
