#!/bin/bash
# Coverage probes for --count-snap (GCMODEL_PROBE): each must print
# "VIOLATION: PROBE reached" (loom reaches that state).  usage: ./count_snap_probes.sh
BIN=${BIN:-target/snap/gcmodel}
source "$(dirname "$0")/probe_lib.sh"
A="$G --defer-shade --no-container --pf-newborn --count-stamp --mark-stamp --mark-counted-only --count-snap"
probe "a barrier pins C (SNAPPED -> QUEUED), shades nothing, and the mutator takes X out" s3 \
  "C: count C.cell record UNTOUCHED -> SNAPPED, snapshot [X]&&M0: C.cell record SNAPPED -> QUEUED (CAS won): pinned&&M0: move X C.cell -> stack&&C: takes pinned C.cell: shades its snapshot [X]" $A
probe "the mark traces C's snapshot before any barrier; the barrier then finds QUEUED and the mutator takes X out" s3 \
  "C: mark C.cell record SNAPPED -> QUEUED: traces its snapshot [X]&&M0: C.cell record reads QUEUED&&M0: move X C.cell -> stack" $A
probe "the mark reads SNAPPED, a barrier pins C before its CAS, the CAS loses; termination traces the snapshot" s3 \
  "C: trace C: record reads SNAPPED (no lock)&&M0: C.cell record SNAPPED -> QUEUED (CAS won): pinned&&C: mark C.cell SNAPPED CAS lost&&C: takes pinned C.cell: shades its snapshot [X]" $A
probe "a pinned cell whose owner becomes unreachable (C dropped, not a root, swept); its snapshot is traced" s3 \
  "M0: C.cell record SNAPPED -> QUEUED (CAS won): pinned&&M0: move X C.cell -> stack&&M0: drop C (handles 1->0)&&C: handles[C]=0 internal=0 -> not root&&C: takes pinned C.cell: shades its snapshot [X]&&C: SWEEP C" $A
probe "cycle 2: M0 moved X into S in cycle 1 and dropped S; cycle 2's count snaps S, M1 pins S and takes X out" s5 \
  "C: cycle_active := true (cycle 2)&&C: count S.cell record UNTOUCHED -> SNAPPED, snapshot [X]&&M1: S.cell record SNAPPED -> QUEUED (CAS won): pinned&&M1: move X S.cell -> stack&&C: takes pinned S.cell: shades its snapshot [X]" $A --cycles 2
probe "cycle 2: a cell pinned in cycle 1 is hot (--count-skip-hot) and skipped" s28 \
  "M0: S.cell record SNAPPED -> QUEUED (CAS won): pinned&&C: cycle_active := true (cycle 2)&&C: count S.cell hot" $A --count-skip-hot --cycles 2
probe "--rw-shared: M0 read-locks S, the count try-locks it too (shared) and snaps it, M0's barrier then pins it" s28 \
  "M0: lock S.cell (read)&&C: count S.cell record UNTOUCHED -> SNAPPED, snapshot [Y]&&M0: S.cell record SNAPPED -> QUEUED (CAS won): pinned&&M0: unlock S.cell" $A --rw-shared
# Negative probes: a barrier that pins a cell after termination's last take of
# the pinned list (the take then happens only in the grace period after
# phase := Off, or never).  With --count-snap each must print PASS (loom never
# reaches it: a cell still SNAPPED after termination belongs to an owner nobody
# holds); with --snap-no-cas-mark the mark leaves the cells it traced SNAPPED,
# and it is reached (extra work only: that snapshot was traced already).
L="C: phase := Off (at termination)&&C: takes pinned"
for s in s1 s3 s4b s4c s5 s7 s15 s17 s26 s28; do probe "no pin after termination's last take" $s "$L" $A; done
probe "no pin after termination's last take (--rw-shared)" s28 "$L" $A --rw-shared
probe "--snap-no-cas-mark: a barrier pins a cell the mark traced, after termination" s3 "$L" $A --snap-no-cas-mark
probe "--snap-no-cas-mark: a barrier pins a cell the mark traced, after termination" s28 "$L" $A --snap-no-cas-mark
