#!/bin/bash
# `make demo`: the product's main job on a throw-away guest, narrated.
# Runs inside the test guest after guest-run.sh has created the pools, set up
# the network Ganeti needs and installed our .deb with apt.
set -euo pipefail

started=$SECONDS
step() { printf '\n=== %s\n' "$*"; }
show() { printf '\n# %s\n' "$*"; "$@"; }
note() { printf '%s\n' "$*" | fold -s -w 78; }

step "1. The node: a ZFS pool, our package installed with apt"
show zpool list -o name,size,free,health tank
show dpkg-query -W ganeti-extstorage-zfs ganeti zfsutils-linux
note "Configure the provider: ext volumes under tank/ganeti, and an emulated LVM volume group 'gnt' whose LVs are zvols in the same dataset, as with the original tool."
cat >/etc/ganeti/extstorage-zfs.conf <<'EOF'
ZFS_PARENT=tank/ganeti
LVM_VG=gnt
EOF
show zfs create -p tank/ganeti
show ganeti-zfs verify

step "2. A one-node Ganeti cluster (fake hypervisor, an OS that installs nothing)"
mkdir -p /srv/ganeti/os/noop
for script in create export import rename verify; do printf '#!/bin/sh\nexit 0\n' >/srv/ganeti/os/noop/$script; done
chmod 755 /srv/ganeti/os/noop/*
echo 20 >/srv/ganeti/os/noop/ganeti_api_version
: >/srv/ganeti/os/noop/parameters.list
show gnt-cluster init --enabled-hypervisors=fake --master-netdev=gnt0 \
    --nic-parameters=mode=bridged,link=gnt-br0 --no-etc-hosts --specs-disk-size=min=128 \
    --enabled-disk-templates=ext --ipolicy-disk-templates=ext cluster.example.com
note "The original README, step 1: enable the templates (plain lives on the emulated VG 'gnt'; this guest has no DRBD)."
show gnt-cluster modify --vg-name=gnt --enabled-disk-templates plain,ext --ipolicy-disk-templates plain,ext

step "3. An instance whose disk is a zvol (original README, step 3)"
show gnt-instance add -t ext --disk=0:size=1G,provider=zfs --net 0:mode=bridged,link=gnt-br0 \
    --no-name-check --no-ip-check -o noop -B maxmem=128M -n node1.example.com demo1
show gnt-instance list -o name,status,disk_template,disk.sizes
show gnt-node list
show gnt-node list-storage -t lvm-vg

step "4. The helper commands"
show ganeti-zfs list
show ganeti-zfs size
show /usr/share/ganeti/extstorage/zfs/bin/list

step "5. The daily snapshot job (what cron.daily and the systemd timer run)"
show ganeti-zfs snapshot
show ganeti-zfs snapshots
show ganeti-zfs check

step "6. A live backup export: Ganeti calls our snapshot action and reads <vol>.snap"
show gnt-backup export -n node1.example.com --noshutdown demo1
show ls /var/lib/ganeti/export/demo1

step "7. Remove the instance: the zvol and its snapshots go, nothing else"
show gnt-instance remove -f demo1
show ganeti-zfs list
show gnt-cluster verify

step "Summary"
note "A Ganeti cluster created, listed, snapshotted, exported and removed an instance whose disk lived on a ZFS zvol, through ganeti-extstorage-zfs installed with apt: real OpenZFS $(cat /sys/module/zfs/version), real Ganeti $(dpkg-query -W -f='${Version}' ganeti). Provider logs: $(ls /var/log/ganeti/extstorage | wc -l) files in /var/log/ganeti/extstorage. Demo steps took $((SECONDS - started)) s in the guest."
