#!/bin/bash
# Wall time of a bare `bun run cli train` (the bundled model, its defaults) at a git revision, so that a before/after
# pair is measured in one quiet window:
#   bash bench/train-wall.sh 05c0fb0 [--runs N] [--warm] [-- extra train flags]
#   bash bench/train-wall.sh 05c0fb0 && bash bench/train-wall.sh HEAD
# The revision is exported with `git archive` into /tmp/train-wall-<commit> (the shared tree and its .git are left
# alone), `bun install --offline` installs it from Bun's cache, then each run is timed. By default every run starts
# with an empty Mesa shader cache, as a first run on a new machine does (lavapipe compiles every pipeline with LLVM);
# --warm primes a cache of its own with one untimed run and times runs that find every pipeline compiled.
# Prints each run's wall and CPU seconds, the median, and where the revision reports them (TEXTCRAFTOR_PROFILE_COMPILE)
# its pipelines' creation seconds as a share of the wall time.
set -eu
rev=${1:-}
[ -n "$rev" ] && [ "${rev#-}" = "$rev" ] || {
  echo "usage: bash bench/train-wall.sh REV [--runs N] [--warm] [-- extra train flags]" >&2
  exit 2
}
shift
runs=1 warm=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
  --runs) runs=$2 && shift 2 ;;
  --warm) warm=1 && shift ;;
  --) shift && extra=("$@") && break ;;
  *) echo "bench/train-wall.sh: unknown option $1 (see its header)" >&2 && exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "bench/train-wall.sh: --runs $runs: give a whole number ≥ 1" >&2 && exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse --verify --quiet "$rev^{commit}") || {
  echo "bench/train-wall.sh: '$rev' is not a commit of $repo" >&2
  exit 2
}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
dir=/tmp/train-wall-${commit:0:12}
if [ ! -f "$dir/package.json" ]; then
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  git -C "$repo" archive "$commit" | tar -x -C "$dir.partial"
  mv "$dir.partial" "$dir"
fi
(cd "$dir" && bun install --offline --frozen-lockfile >/dev/null) || {
  echo "bench/train-wall.sh: bun install --offline failed in $dir: run 'bun install' in $repo once (it fills Bun's cache), then again" >&2
  exit 1
}
cmd=(bun run cli train "${extra[@]}")
echo "train wall time at ${commit:0:12} ($(git -C "$repo" log -1 --format=%s "$commit" | cut -c1-80))"
echo "command: ${cmd[*]} (in $dir), $([ $warm = 1 ] && echo "warm Mesa shader cache" || echo "empty Mesa shader cache each run")"
read -r load _ </proc/loadavg
echo "load average before: $load on $(nproc) cores"
cache=$dir/.mesa-cache
if [ $warm = 1 ]; then
  rm -rf "$cache" "$dir/runs"
  (cd "$dir" && MESA_SHADER_CACHE_DIR=$cache "${cmd[@]}" >"$dir/prime.log" 2>&1) || { tail -20 "$dir/prime.log" >&2; exit 1; }
fi
walls=()
for i in $(seq 1 "$runs"); do
  [ $warm = 1 ] || { rm -rf "$cache" && mkdir -p "$cache"; }
  rm -rf "$dir/runs" # a bare train writes runs/textcraftor
  log=$dir/run-$i.log
  start=$(date +%s.%N)
  # Revisions that have TEXTCRAFTOR_PROFILE_COMPILE report their pipelines' creation seconds at exit.
  (cd "$dir" && MESA_SHADER_CACHE_DIR=$cache TEXTCRAFTOR_PROFILE_COMPILE=$dir/pipelines-$i.json \
    /usr/bin/time -f "%U %S" -o "$dir/cpu-$i" "${cmd[@]}" >"$log" 2>&1) || {
    tail -20 "$log" >&2
    echo "bench/train-wall.sh: run $i failed (log: $log)" >&2
    exit 1
  }
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  read -r user sys <"$dir/cpu-$i"
  printf 'run %d: %.1f s wall, %.1f s CPU\n' "$i" "$wall" "$(echo "$user + $sys" | bc)"
  walls+=("$wall")
  created=$(grep -Eo '[0-9]+ pipelines \(created in [0-9.]+ s\)' "$log" | tail -1 || true)
  if [ -n "$created" ]; then
    seconds=$(echo "$created" | grep -Eo '[0-9.]+ s' | cut -d' ' -f1)
    printf '  %s: %.1f %% of the wall time; lavapipe JIT-compiles at first dispatch, outside it (bun bench/shader-jit.ts %s)\n' \
      "$created" "$(echo "100 * $seconds / $wall" | bc -l)" "$dir/pipelines-$i.json"
  fi
done
printf 'median: %.1f s wall over %d run(s)\n' "$(printf '%s\n' "${walls[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" "$runs"
