#!/bin/bash
# Coverage probes for --mark-counted-only (GCMODEL_PROBE): each must print
# "VIOLATION: PROBE reached" (loom reaches that state).  usage: ./mark_counted_probes.sh
BIN=${BIN:-target/mc/gcmodel}
source "$(dirname "$0")/probe_lib.sh"
A="$G --defer-shade --no-container --pf-newborn --count-stamp --mark-stamp --mark-counted-only"
probe "cycle 2: the mark leaves C, which its count skipped (hot); the mutator then takes X out" s3 \
  "C: cycle_active := true (cycle 2)&&C: count C.cell hot (touched in the last cycle): record -> ACQUIRED, skipped&&C: trace C: record reads ACQUIRED, cell not traced (no lock)&&M0: move X C.cell -> stack" $A --count-skip-hot --cycles 2
probe "a barrier queues C first; the mark then reads QUEUED and leaves C" s3 \
  "M0: C.cell record -> QUEUED&&C: trace C: record reads QUEUED, cell not traced (no lock)" $A
probe "the mark reads COUNTED, a barrier queues before its try-lock, the stamp fails and C is not traced" s3 \
  "C: mark C.cell record not COUNTED: left alone&&C: trace C: record not COUNTED, cell not traced" $A
probe "the mark leaves S (queued by M0); the other mutator takes X out of it" s5 \
  "C: trace S: record reads QUEUED, cell not traced (no lock)&&M1: move X S.cell -> stack" $A
