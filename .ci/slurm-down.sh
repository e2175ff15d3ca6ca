#!/usr/bin/env bash
# Stops the cluster .ci/slurm-up.sh DIR started, by its pid files (slurmd n1/n2, slurmctld, munged).
set -uo pipefail
dir="${1:?usage: slurm-down.sh DIR}"
for pidfile in "$dir"/slurmd-n1.pid "$dir"/slurmd-n2.pid "$dir"/slurmctld.pid "$dir"/munge/munged.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
done
