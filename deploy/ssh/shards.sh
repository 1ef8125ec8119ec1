#!/bin/sh
# One load from several machines over ssh: shard I of N on the I-th host, one start time,
# every report read back over ssh's stdout (`--json -`), then `loadgen merge`, which refuses
# a missing, doubled or foreign shard.
#
#   deploy/ssh/shards.sh SERVER:PORT "HOST1 HOST2 ..." [loadgen flags for the whole load]
#   deploy/ssh/shards.sh 10.0.0.1:7000 "load1 load2 load3" --connections 3000 --rate 300k --duration 60s
#
# loadgen must be on each host's PATH (or set LOADGEN to its path there); the clocks must
# agree (NTP). The pdsh form of the same, when the shards need no per-host index, is
#   pdsh -w load[1-3] 'loadgen --addr ... --start-at @T --json /tmp/$(hostname).json'
# but a shard needs its index, which pdsh does not give, hence the loop.
#
# The harness does the same for every point of a comparison, with the servers it starts:
#   echobench compare --server-addr 10.0.0.1 --generator 'ssh load1' --generator 'ssh load2'
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 SERVER:PORT \"HOST1 HOST2 ...\" [loadgen flags]" >&2
    exit 2
fi
addr=$1
hosts=$2
shift 2
loadgen=${LOADGEN:-loadgen}
# Time for every ssh connection to start its generator and open its connections.
lead=${LEAD_SECONDS:-10}
start=@$(( $(date +%s) + lead ))
out=${OUT:-shards-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

n=0
for _ in $hosts; do n=$((n + 1)); done
i=0
pids=
for host in $hosts; do
    i=$((i + 1))
    # The flags are joined by ssh into one remote command line: keep them free of spaces.
    ssh -n "$host" "$loadgen" --addr "$addr" --shard "$i/$n" --start-at "$start" --json - "$@" \
        > "$out/shard-$i.json" 2> "$out/shard-$i.err" &
    pids="$pids $!"
done
failed=0
for pid in $pids; do
    wait "$pid" || failed=1
done
if [ "$failed" -ne 0 ]; then
    for f in "$out"/shard-*.err; do
        [ -s "$f" ] && printf '%s: %s\n' "$f" "$(tail -n 1 "$f")" >&2
    done
    echo "a generator failed: see $out" >&2
    exit 1
fi
exec "${MERGE_LOADGEN:-loadgen}" merge "$out"/shard-*.json --json "$out/merged.json"
