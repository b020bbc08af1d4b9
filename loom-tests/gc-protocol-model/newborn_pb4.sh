#!/bin/bash
# Bound-4 subset of results_newborn.txt: gort's configuration + --pf-newborn.
cd "$(dirname "$0")"
GORT="--read-barrier --reset-in-sweep --phase-off-at-termination --shade-once --fin-roots-in-mark --prompt-free --pf-drop-seq --clear-grace --pf-off-grace --pf-newborn"
for c in 1 2; do
  for s in ${SC:-s22 s24 s23 s25 s26 s27 s18 s21}; do
    for o in "" --rev; do
      out=$(timeout ${T:-1200} ./target/release/gcmodel $s --pb 4 $GORT --cycles $c $o 2>&1)
      r=$(echo "$out" | grep -oE "^PASS.*executions=[0-9]+|^VIOLATION.*" | cut -c1-80)
      echo "pb=4 cycles=$c $s ${o:-fwd}: ${r:-? (timeout)}"
    done
  done
done
