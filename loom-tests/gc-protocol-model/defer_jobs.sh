#!/bin/bash
# Runs the --defer-shade matrix in parallel (results_defer_shade.txt).
# usage: nice -n 10 ./defer_jobs.sh PB [JOBS]   (env: P = parallel runs, default 2)
# Each line of JOBS: name|flags|extra|scenarios ; output in out/defer/.
PB=${1:-3}
JOBS=${2:-defer_jobs.txt}
cd "$(dirname "$0")"
mkdir -p out/defer
grep -v '^#' "$JOBS" | while IFS='|' read -r name flags extra scs; do
  for s in $scs; do for o in "" "--rev"; do
    echo "$name|$flags|$extra|$s|$o"
  done; done
done | xargs -d '\n' -P "${P:-2}" -I{} bash -c '
  IFS="|" read -r name flags extra s o <<< "{}"
  tag=$(echo "$extra" | tr -c "a-zA-Z0-9\n" "_" | sed "s/^_*//")
  f="out/defer/$name.pb'"$PB"'${tag:+.$tag}.$s${o:+.rev}.txt"
  start=$(date +%s)
  timeout 900 ./target/release/gcmodel $s --pb '"$PB"' $flags $extra $o > "$f" 2>&1
  echo "$(date +%T) $name pb'"$PB"' $extra $s $o -> $(grep -m1 -oE "^PASS|VIOLATION.*" "$f" || echo TIMEOUT) ($(( $(date +%s) - start ))s)"
'
