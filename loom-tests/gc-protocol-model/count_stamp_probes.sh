#!/bin/bash
# Coverage probes for --count-stamp (GCMODEL_PROBE): each must print
# "VIOLATION: PROBE reached" (loom reaches that state).  usage: ./count_stamp_probes.sh
BIN=${BIN:-target/cs2/gcmodel}
source "$(dirname "$0")/probe_lib.sh"
A="$G --defer-shade --no-container --pf-newborn --count-stamp"
probe "barrier wins the CAS before the count; count skips; the other mutator takes X out while the phase is on" s5 \
  "M0: S.cell record UNTOUCHED -> ACQUIRED (CAS won)&&M0: move X stack -> S.cell&&C: count S.cell record ACQUIRED -> skipped&&M1: S.cell record reads ACQUIRED&&M1: move X S.cell -> stack&&C: roots shaded" $A
probe "count first, then an acquisition queues the counted child and takes it out (before the roots)" s3 \
  "C: count C.cell record UNTOUCHED -> COUNTED&&M0: C.cell record COUNTED: shades its children&&M0: queue X&&M0: C.cell record -> QUEUED&&M0: move X C.cell -> stack&&C: roots shaded" $A
probe "count first, then an acquisition after the roots queues the counted child" s3 \
  "C: count C.cell record UNTOUCHED -> COUNTED&&C: roots shaded&&M0: C.cell record COUNTED: shades its children&&M0: queue X" $A
probe "a later acquisition finds QUEUED and does nothing" s23 \
  "M0: C.cell record -> QUEUED&&M0: C.cell record reads QUEUED" $A
probe "second cycle: a record of cycle 1 reads UNTOUCHED" s5 \
  "C: cycle_active := true (cycle 2)&&record reads UNTOUCHED" $A --cycles 2
probe "newborn cell: acquired, never counted (snapshot excludes it)" s25 \
  "C: snapshot old set = [\"X\"]&&M0: N.cell record UNTOUCHED -> ACQUIRED" $A
probe "rw-shared: the reader's CAS loses to the count (then shades)" s28 \
  "M0: S.cell record reads UNTOUCHED&&C: count S.cell record UNTOUCHED -> COUNTED&&M0: S.cell record CAS lost&&M0: S.cell record COUNTED: shades" $A --rw-shared
probe "rw-shared: the count's CAS loses to the reader (then skips)" s28 \
  "C: count S.cell record reads UNTOUCHED&&M0: S.cell record UNTOUCHED -> ACQUIRED (CAS won)&&C: count S.cell record ACQUIRED -> skipped" $A --rw-shared
