#!/bin/bash
# Tabulates out/defer/ (written by defer_jobs.sh); the legend is in
# results_table.sh.
# usage: ./defer_table.sh PB TAG NAME... (TAG: "" for 1 cycle, "cycles_2")
PB=$1; TAG=$2; shift 2
SC="${SC:-s1 s2 s3 s4a s4b s4c s4d s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20 s21}" \
  exec "$(dirname "$0")/results_table.sh" "pb=$PB${TAG:+ $TAG}" "out/defer/\$NAME.pb$PB${TAG:+.$TAG}.\$S\$O.txt" "$@"
