# Sourced by the perf scripts. Needs TARGET (the cargo target dir); sets RDK.
# shellcheck shell=bash

# librdkafka's own benchmark client, built once from the source inside the rdkafka-sys crate
# (the same librdkafka the Rust clients link) and cached in the target dir.
build_rdkafka_performance() {
  local src
  src=$(ls -d "$HOME"/.cargo/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V | tail -1)
  [[ -n $src ]] || { echo "no rdkafka-sys source in ~/.cargo/registry (run a cargo build first)"; exit 1; }
  local ver
  ver=$(basename "$(dirname "$src")")
  RDK=$TARGET/perf-tools/$ver/rdkafka_performance
  [[ -x $RDK ]] && return
  local tmp
  tmp=$(mktemp -d)
  cp -r "$src" "$tmp/"
  (cd "$tmp/librdkafka" && ./configure >/dev/null && make -j"$(nproc)" libs >/dev/null &&
    make -C examples rdkafka_performance >/dev/null) || { echo "rdkafka_performance build failed"; exit 1; }
  mkdir -p "$(dirname "$RDK")"
  cp "$tmp/librdkafka/examples/rdkafka_performance" "$RDK"
  rm -rf "$tmp"
}
