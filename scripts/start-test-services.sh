#!/usr/bin/env bash
# Starts the real services the remote-job tests use, all on this machine:
#   - Debian's openssh-server on 127.0.0.1:${DRAG_TEST_SSH_PORT:-2222}, with a generated host key,
#     a generated client key and a generated known_hosts (host keys are checked, not skipped);
#   - a single-node SLURM (munged, slurmctld, slurmd) that works without cgroups
#     (proctrack/linuxproc, task/none, no cgroup.conf).
# Writes ${DRAG_TEST_SERVICES:-~/.cache/drag-studio/test-services}/env.json, which the tests read;
# a test whose service is missing skips with a printed reason. Idempotent: running it again
# restarts the daemons with the same keys. Needs root (sshd, slurmd) and the Debian packages
# openssh-server, slurm-wlm, munge (installed by .ci/run).
set -euo pipefail

dir="${DRAG_TEST_SERVICES:-$HOME/.cache/drag-studio/test-services}"
port="${DRAG_TEST_SSH_PORT:-2222}"
mkdir -p "$dir"
chmod 700 "$dir"
ssh_ok=false
slurm_ok=false

# ---------------------------------------------------------------- sshd on 127.0.0.1
if [ -x /usr/sbin/sshd ]; then
  [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  # known_hosts made from the generated host key: the client checks it like any other host.
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
  cat > "$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
EOF
  cat > "$dir/ssh_config" <<EOF
Host drag-test
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  ControlMaster no
  LogLevel ERROR

# A host whose key is not in known_hosts: connections must fail, never auto-accept. (Its own
# HostName, so a shared connection of drag-test, which has the same server, is not reused.)
Host drag-test-unknown-key
  HostName localhost
  Port $port
  User $(id -un)
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/empty_known_hosts
  LogLevel ERROR
EOF
  : > "$dir/empty_known_hosts"
  mkdir -p /run/sshd
  if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true; sleep 0.3; fi
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  for _ in $(seq 1 50); do
    if ssh -F "$dir/ssh_config" -o BatchMode=yes drag-test true 2>/dev/null; then ssh_ok=true; break; fi
    sleep 0.2
  done
  echo "[services] sshd on 127.0.0.1:$port: $ssh_ok"
else
  echo "[services] sshd: /usr/sbin/sshd not installed (apt-get install openssh-server)"
fi

# ---------------------------------------------------------------- single-node SLURM
if [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/munged ]; then
  node="$(hostname -s)"
  cpus="$(nproc)"
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  mkdir -p "$dir/slurm/state" "$dir/slurm/spool" /run/munge /var/log/munge /var/lib/munge /etc/slurm
  [ -f /etc/munge/munge.key ] || (umask 077; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  sleep 0.5
  chown -R root:root /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  munged --force
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=drag-test
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/slurm/state
SlurmdSpoolDir=$dir/slurm/spool
SlurmctldPidFile=$dir/slurm/slurmctld.pid
SlurmdPidFile=$dir/slurm/slurmd.pid
SlurmctldLogFile=$dir/slurm/slurmctld.log
SlurmdLogFile=$dir/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=5
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -c
  slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then slurm_ok=true; break; fi
    sleep 0.5
  done
  if ! $slurm_ok; then
    scontrol update nodename="$node" state=resume 2>/dev/null || true
    sleep 1
    sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)' && slurm_ok=true
  fi
  echo "[services] slurm ($node, $cpus cpus): $slurm_ok"
else
  echo "[services] slurm: slurm-wlm or munge not installed"
fi

cat > "$dir/env.json" <<EOF
{"dir": "$dir", "sshConfig": "$dir/ssh_config", "sshHost": "drag-test", "sshUnknownKeyHost": "drag-test-unknown-key", "ssh": $ssh_ok, "slurm": $slurm_ok}
EOF
echo "[services] wrote $dir/env.json"
