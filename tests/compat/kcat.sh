#!/usr/bin/env bash
# Console workflow with Debian's kcat (1.7, built on librdkafka 2.0): the commands an operator
# types. Prints one `kcat.<step>\t<PASS|FAIL>\t<detail>` line per step on stdout; kcat's own
# output goes to stderr. Each step is independent so one failure does not hide the others.
#
#   bash tests/compat/kcat.sh HOST:PORT
set -euo pipefail

broker=$1
topic=compat-kcat-$$-$RANDOM
# Bound every kcat call: a protocol mismatch shows up as a hang, not an error.
k() { timeout 30 kcat -b "$broker" "$@"; }

step() { # step NAME COMMAND...: runs COMMAND, reports PASS/FAIL with the last line of output
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    printf 'kcat.%s\tPASS\t\n' "$name"
  else
    printf 'kcat.%s\tFAIL\t%s\n' "$name" "$(printf '%s' "$out" | tail -n 1 | tr '\t' ' ')"
  fi
  printf '%s\n' "--- kcat.$name" "$out" >&2
}

expect_eq() { # expect_eq WANT GOT
  [ "$1" = "$2" ] || { printf 'want %q got %q\n' "$1" "$2"; return 1; }
}

metadata() {
  local out
  out=$(k -L)
  echo "$out"
  # One broker per shard: --cores 2 gives two.
  [ "$(grep -c '^  broker ' <<<"$out")" -ge 2 ]
}

produce_keyed() {
  printf 'k1:hello\nk2:world\nk3:again\n' | k -P -t "$topic" -K: -p 0
}

consume_keyed() {
  expect_eq $'k1:hello@0\nk2:world@1\nk3:again@2' \
    "$(k -C -t "$topic" -p 0 -o beginning -e -q -f '%k:%s@%o\n')"
}

# Each codec goes through the old client's produce path and back.
codec_roundtrip() {
  local codec=$1 t=$topic-$1
  seq 1 200 | k -P -t "$t" -p 0 -z "$codec"
  expect_eq "$(seq 1 200)" "$(k -C -t "$t" -p 0 -o beginning -e -q -f '%s\n')"
}

headers() {
  local t=$topic-hdr
  echo payload | k -P -t "$t" -p 0 -H trace=abc -H other=1
  expect_eq 'trace=abc,other=1:payload' "$(k -C -t "$t" -p 0 -o beginning -e -q -f '%h:%s\n')"
}

offset_tail() { # -o -1: the last message only
  expect_eq 'k3:again' "$(k -C -t "$topic" -p 0 -o -1 -e -q -f '%k:%s\n')"
}

query_offsets() { # -Q: offset for a timestamp; a time far in the future gives the end (-1)
  local out
  out=$(k -Q -t "$topic:0:9999999999999")
  echo "$out"
  grep -q "offset -1\|offset 3" <<<"$out"
}

group_consume() { # -G: balanced consumer group, exits at the end of the partitions
  local got
  got=$(k -G "compat-kcat-group-$$" -o beginning -e -q -f '%s\n' "$topic" | sort)
  expect_eq $'again\nhello\nworld' "$got"
}

step metadata metadata
step produce produce_keyed
step consume consume_keyed
step offset-tail offset_tail
step gzip codec_roundtrip gzip
step snappy codec_roundtrip snappy
step lz4 codec_roundtrip lz4
step zstd codec_roundtrip zstd
step headers headers
step query-offsets query_offsets
step group-consume group_consume
