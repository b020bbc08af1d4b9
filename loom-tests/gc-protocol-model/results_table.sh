#!/bin/bash
# The body of count_stamp_table.sh and defer_table.sh: tabulates model runs
# per config and scenario. P = passes in both visit orders, F = fails in
# both, Ff/Fr = fails only forward/reverse, ? = neither passed nor failed
# (timeout or still running), - = not run.
# usage: ./results_table.sh HEADER PATTERN NAME...
#   PATTERN: an out file's path with NAME, S (scenario) and O ("" or ".rev")
#   for those, e.g. 'out/$NAME.$S$O.txt' (single-quoted: expanded per file).
# SC: the scenarios (a space-separated list; default s1..s28).
HEADER=$1; PATTERN=$2; shift 2
cd "$(dirname "$0")"
SC="${SC:-s1 s2 s3 s4a s4b s4c s4d s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27 s28}"
printf "%-26s" "config ($HEADER)"; for S in $SC; do printf "%-6s" $S; done; echo
for NAME in "$@"; do
  printf "%-26s" "$NAME"
  for S in $SC; do
    r=""
    for O in "" ".rev"; do
      eval "f=\"$PATTERN\""
      if [ ! -f "$f" ]; then r="$r-"; elif grep -q "^PASS" "$f"; then r="${r}p"; elif grep -q VIOLATION "$f"; then r="${r}f"; else r="$r?"; fi
    done
    case $r in pp) res=P;; ff) res=F;; fp) res=Ff;; pf) res=Fr;; --) res=-;; *-*) res="$r";; *) res="?";; esac
    printf "%-6s" "$res"
  done
  echo
done
