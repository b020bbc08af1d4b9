#!/bin/bash
# The runs behind results_newborn.txt (free at zero of objects born during
# the cycle, --pf-newborn).  usage: nice -n 10 ./newborn_matrix.sh > results_newborn.raw
cd "$(dirname "$0")"
ALL="s1 s2 s3 s4a s4b s4c s4d s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27"
GORT="--read-barrier --reset-in-sweep --phase-off-at-termination --shade-once --fin-roots-in-mark --prompt-free --pf-drop-seq --clear-grace --pf-off-grace"
REF="--read-barrier --clear-grace --prompt-free --pf-drop-seq"
ZERO="s1 s3 s9 s10 s11 s12 s13 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27"
echo "== gort's configuration + --pf-newborn, 1 cycle (S14, S19 run 2) =="
SC="$ALL" ONLY="nb-gort|$GORT --pf-newborn" ./matrix.sh 3
echo "== gort's configuration + --pf-newborn, 2 cycles =="
SC="$ALL" EXTRA="--cycles 2" ONLY="nb-gort|$GORT --pf-newborn" ./matrix.sh 3
echo "== reference order (C1 before phase On) + --pf-newborn, 1 and 2 cycles =="
SC="$ALL" ONLY="nb-ref|$REF --pf-newborn" ./matrix.sh 3
SC="$ALL" EXTRA="--cycles 2" ONLY="nb-ref|$REF --pf-newborn" ./matrix.sh 3
echo "== rule removals, gort's order, scenarios where an object reaches zero, 1 cycle =="
SC="$ZERO" ONLY="nb-late-read|$GORT --pf-newborn --nb-late-read;nb-no-seq|$GORT --pf-newborn --nb-no-seq;nb-reset-store|$GORT --pf-newborn --nb-reset-store;nb-not-born-marked|$GORT --pf-newborn --nb-not-born-marked;nb-atomic-too|$GORT --pf-newborn --pf-atomic-too" ./matrix.sh 3
echo "== rule removals, gort's order, 2 cycles =="
SC="$ZERO" EXTRA="--cycles 2" ONLY="nb-late-read|$GORT --pf-newborn --nb-late-read;nb-no-seq|$GORT --pf-newborn --nb-no-seq;nb-reset-store|$GORT --pf-newborn --nb-reset-store;nb-not-born-marked|$GORT --pf-newborn --nb-not-born-marked;nb-atomic-too|$GORT --pf-newborn --pf-atomic-too" ./matrix.sh 3
echo "== reset-store in the reference order, 2 cycles =="
SC="s22 s23 s24 s25 s26" EXTRA="--cycles 2" ONLY="nb-ref-reset-store|$REF --pf-newborn --nb-reset-store" ./matrix.sh 3
