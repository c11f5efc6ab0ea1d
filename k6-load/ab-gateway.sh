#!/usr/bin/env bash
# A/B of `cocoon bench gateway` between two revisions of this repository.
#
# usage: k6-load/ab-gateway.sh REV_A REV_B PAIRS [bench gateway options...]
#   e.g. k6-load/ab-gateway.sh main my-branch 4 --concurrency 64 --phase 4s --rounds 2 --reply-spread 0.5
#
# Builds each revision in a worktree under $AB_DIR (default /tmp/cocoon-ab), then runs PAIRS pairs
# of the same benchmark, swapping which revision goes first in each pair: on the 2-vCPU development
# VM the first run of a pair was the cheaper one in every pair of a 4-pair A/B (docs/benchmarks.md,
# fifth session), so a fixed order biases the result. For each run and concurrency it prints the
# added time to first token, the tokens per CPU-second of the gateway's event loops, the bytes
# they allocated per token (and, from revisions that measure them, the whole process's per token on
# each path, the share of each path's requests a stop-the-world pause caught, and the added p99 of
# the others), and the gateway's CPU per token scaled by the direct path's client +
# worker CPU in the same run, which factors out how fast the machine was at that moment (each
# line is stamped with the run's start), and with --control among the options the splice proxy's
# added time too.
# With AB_GC_LOG=1 each run also writes its JVM's collector log beside its report and the line
# adds the count and median of its young pauses, which stop client, gateway and worker together.
# Needs git, python3 and JDK 25; extra Maven flags (say -o) in $MVN_FLAGS. The worktrees stay for
# the next A/B; `git worktree remove $AB_DIR/a` (and b) drops them.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
rev_a=$1 rev_b=$2 pairs=$3
shift 3
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${AB_DIR:-/tmp/cocoon-ab}
mkdir -p "$dir"

java_home=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
build() {  # name rev
  local tree="$dir/$1"
  if [ ! -d "$tree" ]; then
    git -C "$root" worktree add --detach "$tree" "$2" >/dev/null
  else
    git -C "$tree" checkout -q --detach "$(git -C "$root" rev-parse "$2")"
  fi
  echo "building $1 ($(git -C "$tree" log --oneline -1))" >&2
  (cd "$tree" && JAVA_HOME=$java_home ./mvnw ${MVN_FLAGS:-} -B -q -pl launcher -am package -DskipTests >&2)
}
build a "$rev_a"
build b "$rev_b"

for pair in $(seq 1 "$pairs"); do
  if [ $((pair % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for name in $order; do
    out="$dir/$name-$pair"
    started=$(date +%H:%M:%S)
    gc_log=()
    if [ "${AB_GC_LOG:-0}" = 1 ]; then gc_log=("-Xlog:gc:file=$out.gc.log"); fi
    (cd "$dir/$name" && "$java_home/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
        "${gc_log[@]}" -jar launcher/target/cocoon-launcher.jar bench gateway "$@" --json --out "$out" > "$out.json" 2> "$out.log")
    python3 - "$out.json" "$pair" "$name" "$started" "${gc_log[@]:+$out.gc.log}" <<'PY'
import json, re, statistics, sys
report = json.load(open(sys.argv[1]))
pauses = ""
if len(sys.argv) > 5:
    ms = [float(m) for m in re.findall(r"Pause Young \(Normal\).* ([0-9.]+)ms$", open(sys.argv[5]).read(), re.M)]
    pauses = f"  young pauses {len(ms)}, median {statistics.median(ms):.1f} ms" if ms else ""
for row in report["rows"]:
    d, g = row["cpu_us_per_token_direct"], row["cpu_us_per_token_gateway"]
    scaled = g["gateway"] / (d["client"] + d["worker"])
    print(f"pair {sys.argv[2]} {sys.argv[3]} {sys.argv[4]}  {row['concurrency']:>3} streams  "
          f"added p50 {row['added_p50_ms']:6.2f} ms  p99 {row['added_p99_ms']:6.2f} ms  "
          f"gateway own p50 {row['gateway_own_p50_ms']:.3f} ms  "
          f"{row['tokens_per_gateway_cpu_second'] / 1000:6.1f}k tok/gw-cpu-s  {g['gateway_bytes_allocated']:5.0f} B/tok  "
          f"scaled cpu {scaled:.3f}"
          + (f"  process B/tok {d['process_bytes_allocated']:5.0f} / {g['process_bytes_allocated']:5.0f}"
             if "process_bytes_allocated" in g else "")
          + (f"  caught by pauses {100 * row['pauses']['overlapped_share_direct']:.2f}% / "
             f"{100 * row['pauses']['overlapped_share_gateway']:.2f}%, unpaused added p99 {row['pauses']['unpaused_added_p99_ms']:6.2f} ms"
             if row.get("pauses") else "")
          + (f"  control added p50 {row['control']['added_p50_ms']:6.2f} ms  p99 {row['control']['added_p99_ms']:6.2f} ms"
             if row.get("control") else "") + pauses)
PY
  done
done
