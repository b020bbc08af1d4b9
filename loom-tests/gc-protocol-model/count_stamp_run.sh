#!/bin/bash
# Runs behind results_count_stamp.txt (--count-stamp, PROTOCOL.md §8).
# usage: nice -n 10 ./count_stamp_run.sh NAME "EXTRA" "SCENARIOS" "FLAGS"
# (matrix.sh with BIN=target/cs2/gcmodel, a copy of the binary, so that
#  rebuilding does not change a running matrix).  Several run in parallel,
#  each on a subset of the scenarios; the tables are then pasted together.
cd "$(dirname "$0")"
G="--read-barrier --reset-in-sweep --phase-off-at-termination --shade-once --fin-roots-in-mark --prompt-free --pf-drop-seq --clear-grace --pf-off-grace"
NAME=$1; EXTRA_=$2; SCS=$3; FLAGS=$4
FLAGS=${FLAGS//\$G/$G}
BIN=${BIN:-target/cs2/gcmodel} SC="$SCS" EXTRA="$EXTRA_" ONLY="$NAME|$FLAGS" ./matrix.sh ${PB:-3}
