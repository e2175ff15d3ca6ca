#!/usr/bin/env bash
# Starts a throwaway Slurm cluster on loopback for the scale-out tests (test/slurm.test.ts):
# munged, slurmctld and two slurmd nodes (n1, n2) on this host, every file under DIR.
# Debian's slurm-wlm and munge (22.05), no systemd. Stop it with .ci/slurm-down.sh DIR.
#   .ci/slurm-up.sh DIR     -> prints `export SLURM_CONF=DIR/slurm.conf` when the nodes are idle
set -euo pipefail
dir="${1:?usage: slurm-up.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
for bin in munged mungekey slurmctld slurmd sbatch sinfo; do
  command -v "$bin" >/dev/null 2>&1 || { echo "slurm-up: $bin not found, expected Debian's slurm-wlm and munge" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "slurm-up: needs root (SlurmUser root, slurmd runs jobs as the submitting user)" >&2; exit 3; }

# Free TCP ports for slurmctld and the two slurmd, so that several clusters can share a machine.
read -r ctld_port n1_port n2_port < <(python3 - <<'PY' 2>/dev/null || node -e '
const net = require("net"); const ports = []; let open = 3
for (let i = 0; i < 3; i++) { const s = net.createServer().listen(0, "127.0.0.1", () => { ports.push(s.address().port); s.close(() => { if (--open === 0) console.log(ports.join(" ")) }) }) }'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
PY
)
host="$(hostname -s)"
# A fresh state every time: no jobs recovered from an earlier cluster.
rm -rf "$dir/state" "$dir/spool"
mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
chmod 700 "$dir/munge"

# munge: its own key and socket, so the machine's munged (if any) is left alone.
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null
chmod 600 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

cpus="$(nproc)"
cat > "$dir/slurm.conf" <<CONF
ClusterName=hardneg-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${dir}/munge/munge.socket
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool/%n
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd-%n.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=100000
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=3600
NodeName=n1 NodeHostname=${host} NodeAddr=127.0.0.1 Port=${n1_port} CPUs=${cpus} State=UNKNOWN
NodeName=n2 NodeHostname=${host} NodeAddr=127.0.0.1 Port=${n2_port} CPUs=${cpus} State=UNKNOWN
PartitionName=ci Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N n1
slurmd -f "$SLURM_CONF" -N n2

# Up when both nodes report idle.
for _ in $(seq 1 60); do
  if [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle')" = 2 ]; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm-up: nodes not idle after 30 s:" >&2
sinfo -N >&2 || true
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd-n1.log" >&2 || true
exit 1
