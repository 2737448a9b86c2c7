#!/usr/bin/env bash
# Compatibility stage: the Kafka clients' own test suites against a real Sluice.
#
#   bash tests/compat/run.sh                 # every CI suite
#   COMPAT_SUITES="console" bash tests/compat/run.sh
#
# Suites (see tests/compat/README.md): librdkafka (its own C test suite, shipped inside the
# rdkafka-sys crate), librdkafka-consumer (the same run with the KIP-848 consumer group
# protocol, TEST_CONSUMER_GROUP_PROTOCOL=consumer), librdkafka-cluster (its multi-node tests against three nodes),
# rdkafka (the rust-rdkafka crate's integration tests, shipped in its crate
# package), console (kcat from Debian and kafkajs from npm). Everything comes from the package
# registries (crates.io, Debian, npm), so this runs on a fresh machine.
#
# Each suite writes `<id>\t<PASS|FAIL|SKIP>\t<detail>` lines; compare.py checks them against
# tests/compat/<suite>.allow. A listed test that does not pass fails the run; a test that passes
# without being listed is only reported, so the list grows by a reviewed commit.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
compat=$root/tests/compat

target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
# Builds of the client suites are cached here between runs (keyed by client version).
work=$target_dir/compat
mkdir -p "$work"
results=$work/results
rm -rf "$results"
mkdir -p "$results"

suites=${COMPAT_SUITES:-librdkafka librdkafka-consumer librdkafka-cluster rdkafka rskafka console}
# librdkafka tests to run: "all" (default) runs every test of the quick run except those marked
# [no-run], so a test that starts passing is noticed; "allow" runs only the allow-listed ones
# (faster, for a quick local check).
librdkafka_tests=${COMPAT_LIBRDKAFKA_TESTS:-all}

KAFKA_VERSION_CLAIM=3.9.0   # the broker version the suites are told to expect
KAFKAJS_VERSION=2.2.4
RSKAFKA_VERSION=0.6.0      # a pure-Rust client: its own protocol code, no librdkafka

log() { printf '\n=== compat: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# ---------------------------------------------------------------------------------------------
# Dependencies: installed only when missing, so a developer machine is left alone.

apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages (not root): ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# librdkafka's configure picks up these codecs and SASL; without the -dev packages some tests
# (compression, SASL config) would be built differently from what the list was made with.
# rapidjson-dev lets the stats tests (0053, 0110) verify their JSON instead of skipping.
apt_install libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev rapidjson-dev
# Tools are checked by command, not package: node may come from elsewhere (nodesource bundles
# npm in its nodejs package, and Debian's npm package would conflict with it).
command -v gcc >/dev/null && command -v g++ >/dev/null && command -v make >/dev/null ||
  apt_install build-essential
command -v python3 >/dev/null || apt_install python3
command -v kcat >/dev/null || apt_install kcat
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm

# ---------------------------------------------------------------------------------------------
# The broker.

log "cargo build --bin sluice"
cargo build --bin sluice
sluice_bin=$target_dir/debug/sluice

broker_pid=""
broker_dir=""

stop_broker() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
  fi
}
trap stop_broker EXIT

# A free base port P such that P, P+1 and P+2 (bootstrap and the two shards) are all free,
# below 32768: above it the kernel hands out clients' ephemeral ports, and one could take a
# broker port between this probe and the bind.
free_port_base() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000)
    socks = []
    try:
        for q in (p, p + 1, p + 2):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}

# start_broker NAME [server.properties lines...]: a fresh broker on a fresh data dir; sets
# $broker_port (bootstrap) and $broker_dir. The log stays in $broker_dir/broker.log.
start_broker() {
  local name=$1
  shift
  broker_dir=$work/broker-$name
  rm -rf "$broker_dir"
  mkdir -p "$broker_dir"
  printf '%s\n' "$@" >"$broker_dir/server.properties"
  broker_port=$(free_port_base)
  "$sluice_bin" serve --data-dir "$broker_dir/data" --port "$broker_port" --cores 2 \
    --metrics-addr off --config "$broker_dir/server.properties" >"$broker_dir/broker.log" 2>&1 &
  broker_pid=$!
  local i q up
  for i in $(seq 1 150); do
    up=1
    for q in "$broker_port" $((broker_port + 1)) $((broker_port + 2)); do
      (exec 3<>"/dev/tcp/127.0.0.1/$q") 2>/dev/null || up=0
    done
    [ "$up" = 1 ] && return 0
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "broker did not start; log:" >&2
  cat "$broker_dir/broker.log" >&2
  exit 1
}

# Ids of a list file: the first word of each line that is not a comment.
list_ids() {
  grep -v '^\s*#' "$compat/$1" | awk 'NF {print $1}'
}
# Ids the skip reasons of a suite mark [no-run].
no_run_ids() {
  grep -v '^\s*#' "$compat/$1.skip-reasons" | awk '/\[no-run\]/ {print $1}'
}

status=0
compare() {
  local suite=$1
  python3 "$compat/compare.py" "$suite" "$results/$suite.tsv" "$compat/$suite.allow" \
    "$compat/$suite.skip-reasons" || status=1
}

# ---------------------------------------------------------------------------------------------
# Suite: librdkafka's own tests.

# The rdkafka-sys crate version comes from our Cargo.lock, so CI tests the librdkafka we ship.
rdkafka_sys_src() {
  local v
  v=$(awk '/^name = "rdkafka-sys"/{getline; gsub(/"/,"",$3); print $3}' "$root/Cargo.lock")
  local d
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-"$v"; do
    [ -d "$d/librdkafka" ] && { echo "$d"; return; }
  done
  echo "rdkafka-sys $v source not found; run cargo fetch" >&2
  return 1
}

# Builds librdkafka and its test-runner (once per rdkafka-sys version) and sets
# $librdkafka_build to the tree. COMPAT_LIBRDKAFKA_BUILD names a tree built by hand instead.
build_librdkafka() {
  if [ -n "${COMPAT_LIBRDKAFKA_BUILD:-}" ]; then
    librdkafka_build=$COMPAT_LIBRDKAFKA_BUILD
    return
  fi
  cargo fetch --quiet
  local src
  src=$(rdkafka_sys_src)
  local build=$work/librdkafka-$(basename "$src")
  # Built once per rdkafka-sys version; a partial build is redone from scratch.
  if [ ! -x "$build/tests/test-runner" ]; then
    rm -rf "$build"
    cp -r "$src/librdkafka" "$build"
    # Logs go outside the tree: mklove's configure loads every ./configure.* file as a module.
    (cd "$build" && ./configure >"$work/librdkafka-build.log" 2>&1 &&
      make -j2 libs >>"$work/librdkafka-build.log" 2>&1 &&
      make -j2 -C tests build >>"$work/librdkafka-build.log" 2>&1) || {
      tail -n 40 "$work/librdkafka-build.log" >&2
      echo "librdkafka build failed, see $work/librdkafka-build.log" >&2
      exit 1
    }
  fi
  librdkafka_build=$build
}

# run_librdkafka SUITE [VAR=value...]: librdkafka's quick run against one fresh single-node
# broker, with the extra VAR=value settings in the test-runner's environment; results go to
# $results/SUITE.tsv and are compared with SUITE.allow. Both single-node suites (librdkafka
# and librdkafka-consumer) run the same tests with the same skips and broker settings.
run_librdkafka() {
  local suite=$1
  shift
  log "suite $suite: build"
  build_librdkafka
  local build=$librdkafka_build

  # Many tests produce to partitions 0..3 of topics they let the broker auto-create; with the
  # default num.partitions=1, 0012, 0015, 0029, 0054, 0056 and 0057 fail with "Unknown partition".
  start_broker "$suite" "num.partitions=4"
  printf 'metadata.broker.list=127.0.0.1:%s\n' "$broker_port" >"$build/tests/test.conf"

  # Tests marked [no-run] in the skip reasons are never started: a test that times out makes
  # the runner abort every test after it, and the JVM-tool tests only burn minutes failing.
  # Every single-node suite skips librdkafka's [no-run] tests, plus its own.
  # CI is set whether or not this runs on CI, so a developer machine and CI run the same suite:
  # with CI set the runner triples its timeouts, turns timing asserts into warnings and skips
  # 0055_producer_latency ("not reliable on CI"); CI machines set it themselves.
  # The multi-node tests run in the librdkafka-cluster suite instead.
  local tests_env=(CI=true TESTS_SKIP="$({
    no_run_ids librdkafka
    [ "$suite" = librdkafka ] || no_run_ids "$suite"
    list_ids librdkafka-cluster.allow
  } | cut -c1-4 | sort -u | paste -sd, -)")
  if [ "$librdkafka_tests" = allow ]; then
    # TESTS is matched by substring against each test's number; list the allowed ones.
    tests_env+=(TESTS="$(list_ids "$suite.allow" | cut -c1-4 | sort -u | paste -sd, -)")
  fi
  log "suite $suite: run (broker on $broker_port)"
  # -Q quick mode, -E no socket-emulation tests, -L no local-only tests, -p2: two at a time.
  # The runner sometimes aborts at exit ("threads still active") after writing its report, so
  # its exit status is not used: the JSON report is the result.
  local report=$work/$suite-report.json
  rm -f "$report"
  (cd "$build/tests" &&
    env "${tests_env[@]}" "$@" LD_LIBRARY_PATH=../src:../src-cpp \
      TEST_KAFKA_VERSION=$KAFKA_VERSION_CLAIM TEST_REPORT="$report" \
      timeout 1800 ./test-runner -Q -E -L -p2 >"$work/$suite.log" 2>&1) || true
  stop_broker
  cp "$broker_dir/broker.log" "$work/$suite-broker.log"
  python3 "$compat/librdkafka_report.py" "$report" "$work/$suite.log" >"$results/$suite.tsv"
  compare "$suite"
}

suite_librdkafka() {
  run_librdkafka librdkafka
}

# ---------------------------------------------------------------------------------------------
# Suite: librdkafka's tests again with the KIP-848 consumer group protocol: test.c sets
# group.protocol=consumer on every consumer it creates (and leaves out the classic-only
# session.timeout.ms, heartbeat.interval.ms, partition.assignment.strategy), and the tests
# that check classic-only behaviour take their consumer-protocol branch or skip themselves.

suite_librdkafka-consumer() {
  run_librdkafka librdkafka-consumer TEST_CONSUMER_GROUP_PROTOCOL=consumer
}

# ---------------------------------------------------------------------------------------------
# Suite: librdkafka's multi-node tests against a 3-node cluster (nodes on 127.0.0.1-3, one
# shard each, as in the README's cluster section).

# The tests this suite runs (test-runner's TESTS: numbers, matched by prefix); the single-node
# suite skips those on librdkafka-cluster.allow.
LIBRDKAFKA_CLUSTER_TESTS=(0081 0101 0103)

cluster_pids=()

stop_cluster() {
  local pid
  for pid in "${cluster_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster_pids=()
  trap stop_broker EXIT
}

# A free base port P, below 32768 as for one broker, such that P (bootstrap), P+1 (the
# shard) and P+2 (CONTROLLER) are free on each of 127.0.0.1-3.
free_cluster_port_base() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000)
    socks = []
    try:
        for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            for q in (p, p + 1, p + 2):
                s = socket.socket(); s.bind((host, q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}

# start_cluster NAME [properties lines...]: three fresh nodes; node n is broker n*1000 in rack
# RACK<n*1000> (librdkafka's 0101 sets client.rack to "RACK<broker id>"), with Kafka's
# rack-aware replica selector. Sets $cluster_port (bootstrap on every node) and $cluster_dir.
start_cluster() {
  local name=$1
  shift
  cluster_dir=$work/cluster-$name
  rm -rf "$cluster_dir"
  mkdir -p "$cluster_dir"
  # COMPAT_CLUSTER_PORT pins P (a developer sharing the machine keeps to a range of ports).
  cluster_port=${COMPAT_CLUSTER_PORT:-$(free_cluster_port_base)}
  local controller=$((cluster_port + 2)) n
  local voters="1@127.0.0.1:$controller,2@127.0.0.2:$controller,3@127.0.0.3:$controller"
  trap 'stop_cluster; stop_broker' EXIT
  for n in 1 2 3; do
    printf '%s\n' "node.id=$n" "process.roles=broker,controller" \
      "controller.quorum.voters=$voters" \
      "listeners=PLAINTEXT://127.0.0.$n:$cluster_port,CONTROLLER://127.0.0.$n:$controller" \
      "advertised.listeners=PLAINTEXT://127.0.0.$n:$cluster_port" \
      "controller.listener.names=CONTROLLER" "broker.rack=RACK${n}000" \
      "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector" \
      "log.dirs=$cluster_dir/data$n" "default.replication.factor=3" \
      "offsets.topic.replication.factor=3" "transaction.state.log.replication.factor=3" \
      "$@" >"$cluster_dir/node$n.properties"
    "$sluice_bin" serve --cores 1 --metrics-addr off --config "$cluster_dir/node$n.properties" \
      >"$cluster_dir/node$n.log" 2>&1 &
    cluster_pids+=($!)
  done
  # Formed when every node lists the three brokers.
  local i listed
  for i in $(seq 1 150); do
    listed=0
    for n in 1 2 3; do
      "$sluice_bin" cluster brokers --bootstrap-server "127.0.0.$n:$cluster_port" 2>/dev/null |
        grep -cE '^\s*[123]000\b' | grep -qx 3 && listed=$((listed + 1))
    done
    [ "$listed" = 3 ] && return 0
    sleep 0.2
  done
  echo "the cluster did not form; logs:" >&2
  tail -n 30 "$cluster_dir"/node*.log >&2
  exit 1
}

suite_librdkafka-cluster() {
  log "suite librdkafka-cluster: build"
  build_librdkafka
  local build=$librdkafka_build
  # min.insync.replicas stays at Kafka's default 1: 0081 writes acks=all to RF=1 topics. Its
  # ACL subtests need an authorizer; ANONYMOUS (every client here, and the nodes' own
  # replica fetches and markers) is a super user, as in librdkafka's own test clusters.
  start_cluster librdkafka "num.partitions=4" \
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" \
    "super.users=User:ANONYMOUS" "allow.everyone.if.no.acl.found=true"
  # Its own test.conf and report (RDKAFKA_TEST_CONF), so the tree's are left alone.
  local conf=$cluster_dir/test.conf report=$work/librdkafka-cluster-report.json tests
  printf 'metadata.broker.list=127.0.0.1:%s,127.0.0.2:%s,127.0.0.3:%s\n' \
    "$cluster_port" "$cluster_port" "$cluster_port" >"$conf"
  tests=$(IFS=,; echo "${LIBRDKAFKA_CLUSTER_TESTS[*]}")
  log "suite librdkafka-cluster: run $tests (nodes on 127.0.0.1-3:$cluster_port)"
  rm -f "$report"
  # As in the single-node suite: the JSON report is the result, not the exit status.
  (cd "$build/tests" &&
    env CI=true TESTS="$tests" RDKAFKA_TEST_CONF="$conf" LD_LIBRARY_PATH=../src:../src-cpp \
      TEST_KAFKA_VERSION=$KAFKA_VERSION_CLAIM TEST_REPORT="$report" \
      timeout 900 ./test-runner -Q -E -L >"$work/librdkafka-cluster.log" 2>&1) || true
  stop_cluster
  for n in 1 2 3; do cp "$cluster_dir/node$n.log" "$work/librdkafka-cluster-node$n.log"; done
  python3 "$compat/librdkafka_report.py" "$report" "$work/librdkafka-cluster.log" \
    >"$work/librdkafka-cluster.raw.tsv"
  # Some tests only print a failed check (0101's test_assert): those lines fail them here.
  python3 "$compat/librdkafka_soft_asserts.py" "$work/librdkafka-cluster.raw.tsv" \
    "$work/librdkafka-cluster.log" >"$results/librdkafka-cluster.tsv"
  compare librdkafka-cluster
}

# Copies the registry source of crate $1 version $2 (it must ship tests/) to $work/$1-$2 and
# sets crate_copy to it. Copied because cargo must not write into the registry; the crate's own
# Cargo.lock pins its dependencies. The copy may sit inside this repository (target/compat/ by
# default): an empty workspace table makes it its own workspace, not a stray member of ours.
copy_crate() {
  local name=$1 version=$2 src="" d
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$name-$version"; do
    [ -d "$d/tests" ] && src=$d
  done
  [ -n "$src" ] || { echo "$name $version source with tests/ not found" >&2; exit 1; }
  crate_copy=$work/$name-$version
  if [ ! -f "$crate_copy/Cargo.toml" ]; then
    rm -rf "$crate_copy"
    cp -r "$src" "$crate_copy"
  fi
  grep -q '^\[workspace\]' "$crate_copy/Cargo.toml" || printf '\n[workspace]\n' >>"$crate_copy/Cargo.toml"
}

# ---------------------------------------------------------------------------------------------
# Suite: rust-rdkafka's integration tests (tests/ ships in the crate package).

suite_rdkafka() {
  log "suite rdkafka: build"
  cargo fetch --quiet
  local v
  v=$(awk '/^name = "rdkafka"$/{getline; gsub(/"/,"",$3); print $3}' "$root/Cargo.lock")
  copy_crate rdkafka "$v"
  local crate=$crate_copy

  # Every integration-test target except those marked [no-run] (test_transactions hangs until
  # transactions exist) and utils.rs, which holds helpers only.
  local targets=() f
  for f in "$crate"/tests/test_*.rs; do
    f=$(basename "$f" .rs)
    no_run_ids rdkafka | grep -qx "$f" || targets+=(--test "$f")
  done
  (cd "$crate" && CARGO_TARGET_DIR=$work/rdkafka-target cargo test --locked --no-run \
    "${targets[@]}" >"$work/rdkafka-build.log" 2>&1) || {
    tail -n 30 "$work/rdkafka-build.log" >&2
    exit 1
  }
  # The tests expect auto-created topics to have 3 partitions.
  start_broker rdkafka "num.partitions=3"
  log "suite rdkafka: run (broker on $broker_port)"
  (cd "$crate" && KAFKA_HOST=127.0.0.1:$broker_port KAFKA_VERSION=$KAFKA_VERSION_CLAIM \
    CARGO_TARGET_DIR=$work/rdkafka-target timeout 900 cargo test --locked "${targets[@]}" \
    --no-fail-fast -- --test-threads=2 >"$work/rdkafka.log" 2>&1) || true
  stop_broker
  cp "$broker_dir/broker.log" "$work/rdkafka-broker.log"
  python3 "$compat/cargo_test_report.py" "$work/rdkafka.log" >"$results/rdkafka.tsv"
  compare rdkafka
}

# ---------------------------------------------------------------------------------------------
# Suite: rskafka's integration tests (tests/ ships in the crate package).

suite_rskafka() {
  log "suite rskafka: build"
  # rskafka is not a dependency of Sluice: a throwaway manifest makes cargo download the
  # pinned version into the registry.
  local fetch=$work/rskafka-fetch
  mkdir -p "$fetch/src"
  printf '[package]\nname = "rskafka-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nrskafka = "=%s"\n\n[workspace]\n' \
    "$RSKAFKA_VERSION" >"$fetch/Cargo.toml"
  : >"$fetch/src/lib.rs"
  (cd "$fetch" && cargo fetch --quiet)
  copy_crate rskafka "$RSKAFKA_VERSION"
  local crate=$crate_copy
  if [ -f "$crate/rust-toolchain.toml" ]; then
    # Its rust-toolchain.toml pins Rust 1.85, which rustup cannot download here; its locked
    # rsasl does not build on current Rust (the crate's own note: `cargo update -p rsasl`).
    rm -f "$crate/rust-toolchain.toml"
    (cd "$crate" && cargo update --quiet -p rsasl)
  fi
  local targets=() f
  for f in client consumer producer produce_consume; do targets+=(--test "$f"); done
  (cd "$crate" && CARGO_TARGET_DIR=$work/rskafka-target cargo test --no-run "${targets[@]}" \
    >"$work/rskafka-build.log" 2>&1) || {
    tail -n 30 "$work/rskafka-build.log" >&2
    exit 1
  }
  # Tests that would return early without asserting anything (no JVM, no SOCKS5 proxy) are
  # not run at all, so they cannot count as passes; see rskafka.skip-reasons.
  local skips=() id
  # Ids are `<binary>::<test>`; libtest's --skip wants the test's own name.
  while read -r id; do skips+=(--skip "${id#*::}"); done < <(no_run_ids rskafka)
  # rskafka's own docker-compose runs Kafka with auto-creation off; test_non_existing_partition
  # depends on it (a Metadata request for a missing topic must not create it).
  start_broker rskafka "auto.create.topics.enable=false"
  log "suite rskafka: run (broker on $broker_port)"
  (cd "$crate" && TEST_INTEGRATION=1 TEST_BROKER_IMPL=kafka KAFKA_CONNECT=127.0.0.1:$broker_port \
    CARGO_TARGET_DIR=$work/rskafka-target timeout 900 cargo test "${targets[@]}" --no-fail-fast \
    -- --test-threads=2 "${skips[@]}" --skip test_sasl >"$work/rskafka.log" 2>&1) || true
  stop_broker
  cp "$broker_dir/broker.log" "$work/rskafka-broker.log"
  # test_sasl authenticates with SASL/PLAIN as admin/admin-secret against KAFKA_SASL_CONNECT:
  # a second broker with a SASL_PLAINTEXT listener, like the one in rskafka's docker-compose.
  start_broker rskafka-sasl "listeners=SASL_PLAINTEXT://127.0.0.1:9092" "sasl.enabled.mechanisms=PLAIN" \
    'listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";'
  log "suite rskafka: test_sasl (SASL broker on $broker_port)"
  (cd "$crate" && TEST_INTEGRATION=1 TEST_BROKER_IMPL=kafka KAFKA_CONNECT=127.0.0.1:$broker_port \
    KAFKA_SASL_CONNECT=127.0.0.1:$broker_port CARGO_TARGET_DIR=$work/rskafka-target timeout 300 \
    cargo test --test client -- --exact test_sasl >"$work/rskafka-sasl.log" 2>&1) || true
  stop_broker
  cp "$broker_dir/broker.log" "$work/rskafka-sasl-broker.log"
  cat "$work/rskafka.log" "$work/rskafka-sasl.log" >"$work/rskafka-all.log"
  python3 "$compat/cargo_test_report.py" "$work/rskafka-all.log" >"$results/rskafka.tsv"
  compare rskafka
}

# ---------------------------------------------------------------------------------------------
# Suite: console workflows with kcat (Debian, librdkafka 2.0) and kafkajs (npm, pure JS).

suite_console() {
  log "suite console: install kafkajs $KAFKAJS_VERSION"
  local node=$work/node
  if [ ! -f "$node/node_modules/kafkajs/package.json" ] ||
    ! grep -q "\"version\": \"$KAFKAJS_VERSION\"" "$node/node_modules/kafkajs/package.json"; then
    mkdir -p "$node"
    npm install --silent --no-audit --no-fund --prefix "$node" "kafkajs@$KAFKAJS_VERSION" >/dev/null
  fi
  start_broker console
  log "suite console: run (broker on $broker_port)"
  : >"$results/console.tsv"
  bash "$compat/kcat.sh" "127.0.0.1:$broker_port" >>"$results/console.tsv" 2>"$work/kcat.log" ||
    true
  NODE_PATH=$node/node_modules timeout 300 node "$compat/kafkajs.js" "127.0.0.1:$broker_port" \
    >>"$results/console.tsv" 2>"$work/kafkajs.log" || true
  stop_broker
  cp "$broker_dir/broker.log" "$work/console-broker.log"
  compare console
}

start=$(date +%s)
for suite in $suites; do
  suite_start=$(date +%s)
  "suite_$suite"
  echo "[$suite] took $(($(date +%s) - suite_start)) s"
done

log "done in $(($(date +%s) - start)) s; results in $results, logs in $work"
if [ "$status" -ne 0 ]; then
  log "FAILED: a test on an allow-list did not pass"
fi
exit "$status"
