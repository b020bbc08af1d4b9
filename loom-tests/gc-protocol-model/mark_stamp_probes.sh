#!/bin/bash
# Coverage probes for --mark-stamp (GCMODEL_PROBE): each must print
# "VIOLATION: PROBE reached" (loom reaches that state).  usage: ./mark_stamp_probes.sh
BIN=${BIN:-target/ms/gcmodel}
source "$(dirname "$0")/probe_lib.sh"
A="$G --defer-shade --no-container --pf-newborn --count-stamp --mark-stamp"
probe "the mark stamps C first; a barrier then finds QUEUED, queues nothing and takes X out" s3 \
  "C: mark C.cell record COUNTED -> QUEUED&&M0: C.cell record reads QUEUED&&M0: C.cell record QUEUED: nothing&&M0: move X C.cell -> stack" $A
probe "a barrier queues first; the mark's stamp then finds the record not COUNTED" s3 \
  "M0: C.cell record -> QUEUED&&C: mark C.cell record not COUNTED" $A
probe "rw-shared: a reader queues while the mark holds the cell" s28 \
  "M0: S.cell record COUNTED: shades its children&&C: mark S.cell record COUNTED -> QUEUED" $A --rw-shared
probe "the mark stamps S; the other mutator takes X out of S (two mutators)" s5 \
  "C: mark S.cell record COUNTED -> QUEUED&&M1: S.cell record QUEUED: nothing&&M1: move X S.cell -> stack" $A
