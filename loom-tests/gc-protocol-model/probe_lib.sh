# Sourced by the *_probes.sh scripts: gort's configuration G and probe(),
# which runs one scenario with GCMODEL_PROBE set and prints whether loom
# reached that state ("VIOLATION: PROBE reached"). Set BIN first.
cd "$(dirname "$0")"
G="--read-barrier --reset-in-sweep --phase-off-at-termination --shade-once --fin-roots-in-mark --prompt-free --pf-drop-seq --clear-grace --pf-off-grace"
probe() { # name scenario "probe" flags...
  n=$1; s=$2; p=$3; shift 3
  r=$(GCMODEL_PROBE="$p" timeout 600 $BIN $s --pb 3 "$@" 2>&1 | grep -m1 "^VIOLATION\|^PASS")
  echo "$n [$s]: ${r:-?}"
}
