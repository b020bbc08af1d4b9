#!/bin/bash
# Coverage probes for --count-skip-hot / --count-skip-all (GCMODEL_PROBE): each must print
# "VIOLATION: PROBE reached" (loom reaches that state).  usage: ./count_skip_probes.sh
BIN=${BIN:-target/sk/gcmodel}
source "$(dirname "$0")/probe_lib.sh"
A="$G --defer-shade --no-container --pf-newborn --count-stamp --mark-stamp"
probe "cycle 2 skips a cell touched in cycle 1; the mutator then takes X out of it" s3 \
  "C: cycle_active := true (cycle 2)&&C: count C.cell hot (touched in the last cycle): record -> ACQUIRED, skipped&&M0: C.cell record reads ACQUIRED&&M0: move X C.cell -> stack" $A --count-skip-hot --cycles 2
probe "cycle 2 skips S (hot); the other mutator takes X out of it" s5 \
  "C: count S.cell hot (touched in the last cycle): record -> ACQUIRED, skipped&&M1: move X S.cell -> stack" $A --count-skip-hot --cycles 2
probe "a cell untouched in cycle 1 is counted in cycle 2" s3 \
  "C: cycle_active := true (cycle 2)&&C: count C.cell record UNTOUCHED -> COUNTED" $A --count-skip-hot --cycles 2
probe "skip-all: the count's CAS loses to a barrier (skipped either way)" s28 \
  "skipped by rule: record -> ACQUIRED (CAS lost to a barrier)" $A --count-skip-all --rw-shared
