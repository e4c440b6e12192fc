#!/usr/bin/env bash
# Redis 7.0 baseline for examples/bench_store.rs: N keys of 16 bytes with
# 100-byte random values; times SAVE and the load at startup, prints the
# dump.rdb size. Usage: redis_baseline.sh [N]
set -euo pipefail
N=${1:-1000000}
PORT=$(( 20000 + RANDOM % 10000 ))
DIR=$(mktemp -d)
trap 'redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT

start() {
  redis-server --port "$PORT" --dir "$DIR" --save '' --appendonly no \
    --daemonize no --logfile "$DIR/redis.log" &
  until [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
}

start
python3 - "$N" <<'PY' | redis-cli -p "$PORT" --pipe >/dev/null
import os, sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    v = os.urandom(100)
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + k + b"\r\n$100\r\n" + v + b"\r\n")
PY
echo "keys: $(redis-cli -p "$PORT" dbsize)"
t0=$(date +%s.%N); redis-cli -p "$PORT" save >/dev/null; t1=$(date +%s.%N)
echo "redis SAVE: $(echo "$t1 - $t0" | bc) s, dump.rdb $(stat -c %s "$DIR/dump.rdb") bytes"
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
wait || true
start
grep -o 'DB loaded from disk: [0-9.]* seconds' "$DIR/redis.log" | sed 's/^/redis load: /'
