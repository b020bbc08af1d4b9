#!/bin/bash
# Tabulates out/ files written by count_stamp_run.sh (matrix.sh): P = passes in
# both visit orders, F = fails in both, Ff/Fr = fails only forward/reverse,
# ? = neither passed nor failed (timeout or still running), - = not run.
# usage: ./count_stamp_table.sh TAG NAME...   (TAG: "" for 1 cycle at bound 3, "cycles_2",
#        "pb_4" for runs with EXTRA "--pb 4")
TAG=$1; shift
cd "$(dirname "$0")"
SC="${SC:-s1 s2 s3 s4a s4b s4c s4d s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27 s28}"
case "$TAG" in *pb_*) hdr="$TAG";; *) hdr="pb=3${TAG:+ $TAG}";; esac
printf "%-26s" "config ($hdr)"; for s in $SC; do printf "%-6s" $s; done; echo
for name in "$@"; do
  printf "%-26s" "$name"
  for s in $SC; do
    r=""
    for o in "" ".rev"; do
      f="out/$name${TAG:+.$TAG}.$s$o.txt"
      if [ ! -f "$f" ]; then r="$r-"; elif grep -q "^PASS" "$f"; then r="${r}p"; elif grep -q VIOLATION "$f"; then r="${r}f"; else r="$r?"; fi
    done
    case $r in pp) res=P;; ff) res=F;; fp) res=Ff;; pf) res=Fr;; --) res=-;; *-*) res="$r";; *) res="?";; esac
    printf "%-6s" "$res"
  done
  echo
done
