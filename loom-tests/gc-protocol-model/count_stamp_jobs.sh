#!/bin/bash
# Runs a queue of single gcmodel runs in parallel, writing the same out/ files
# as matrix.sh (so count_stamp_table.sh tabulates them).  A run whose out file
# exists already is skipped.
# usage: nice -n 10 ./count_stamp_jobs.sh JOBS   (env: P = parallel runs, default 2;
#        BIN, TMO as in matrix.sh).  Each line of JOBS: name|flags|extra|scenarios
# ($G in flags is gort's configuration).
JOBS=$1
cd "$(dirname "$0")"
mkdir -p out
G="--read-barrier --reset-in-sweep --phase-off-at-termination --shade-once --fin-roots-in-mark --prompt-free --pf-drop-seq --clear-grace --pf-off-grace"
export BIN=${BIN:-target/cs2/gcmodel} TMO=${TMO:-900}
grep -v '^#' "$JOBS" | while IFS='|' read -r name flags extra scs; do
  flags=${flags//\$G/$G}
  for s in $scs; do for o in "" "--rev"; do
    tag=$(echo "$extra" | tr -c 'a-zA-Z0-9\n' '_' | sed 's/^_*//')
    f="out/$name${tag:+.$tag}.$s${o:+.rev}.txt"
    [ -e "$f" ] || echo "$name|$flags|$extra|$s|$o|$f"
  done; done
done | xargs -d '\n' -P "${P:-2}" -I{} bash -c '
  IFS="|" read -r name flags extra s o f <<< "{}"
  [ -e "$f" ] && exit 0
  start=$(date +%s)
  timeout $TMO $BIN $s --pb 3 $flags $extra $o > "$f" 2>&1
  echo "$(date +%T) $name $extra $s $o -> $(grep -m1 -oE "^PASS|VIOLATION.*" "$f" || echo TIMEOUT) ($(( $(date +%s) - start ))s)"
'
