#!/bin/bash
# Tabulates out/ files written by count_stamp_run.sh (matrix.sh); the legend
# is in results_table.sh.
# usage: ./count_stamp_table.sh TAG NAME...   (TAG: "" for 1 cycle at bound 3, "cycles_2",
#        "pb_4" for runs with EXTRA "--pb 4")
TAG=$1; shift
case "$TAG" in *pb_*) hdr="$TAG";; *) hdr="pb=3${TAG:+ $TAG}";; esac
exec "$(dirname "$0")/results_table.sh" "$hdr" "out/\$NAME${TAG:+.$TAG}.\$S\$O.txt" "$@"
