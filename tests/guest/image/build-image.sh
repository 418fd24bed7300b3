#!/bin/bash
# Build the test guest: a Debian root file system image with OpenZFS (zfs-dkms, built
# for the guest's kernel) and Ganeti, plus that kernel and its initrd.
#
#   usage: build-image.sh RELEASE OUTDIR
#
# Writes OUTDIR/{root.img,vmlinuz,initrd.img,kernel-version,packages.txt,build.log}.
# tests/guest/vm.py calls this with a temporary OUTDIR and renames it into the cache
# when it is complete; run it by hand only to debug the recipe. Needs root,
# debootstrap and e2fsprogs (mkfs.ext4 -d: no loop mounts).
set -euo pipefail

release=${1:?usage: build-image.sh RELEASE OUTDIR}
out=${2:?usage: build-image.sh RELEASE OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$out/rootfs
log=$out/build.log
ROOT_SIZE=4G   # sparse; the guest's writes go to a throw-away overlay anyway

# What the guest needs besides debootstrap's minbase. Everything the package under
# test depends on must be here: the guest has no network and installs it offline.
KERNEL_PACKAGES="linux-image-amd64 linux-headers-amd64 initramfs-tools udev kmod"
ZFS_PACKAGES="zfs-dkms zfsutils-linux"
PACKAGES="ganeti lvm2 drbd-utils openssh-server python3 python3-pytest python3-hypothesis
          iproute2 procps psmisc util-linux man-db groff-base lintian"
# The release a bookworm node upgrades to: its lvm2 (which moves every command from /sbin to
# /usr/sbin) and what that lvm2 needs is kept in a local repository in the bookworm image, so
# the offline guest can upgrade lvm2 under the package (tests/guest/suite/test_release_upgrade.py).
declare -A UPGRADE_TO=([bookworm]=trixie)
UPGRADE_PACKAGES="lvm2"
UPGRADE_REPO=/var/lib/guest-upgrade

start=$SECONDS
mkdir -p "$out"
exec 3>&1 >>"$log" 2>&1          # details go to the log, progress lines to fd 3
progress() { printf '[build-image %4ds] %s\n' $((SECONDS - start)) "$*" >&3; }

cleanup() {
    local rc=$?
    umount -l "$root/sys" "$root/proc" 2>/dev/null || true
    if [ $rc -ne 0 ]; then
        progress "FAILED (exit $rc); last lines of $log:"
        tail -n 40 "$log" >&3
    fi
}
trap cleanup EXIT

# The archive URIs are taken from this machine's own apt sources (deb822): the first
# stanza with a non-security suite gives the archive, the one with a *-security suite
# the security archive. GUEST_MIRROR / GUEST_SECURITY_MIRROR override them.
apt_uri() { "$here/../../../scripts/debian-archive-uri" "$1" "${GUEST_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}"; }
mirror=${GUEST_MIRROR:-$(apt_uri main)}
security=${GUEST_SECURITY_MIRROR:-$(apt_uri security)}
[ -n "$mirror" ] && [ -n "$security" ] || { progress "no Debian archive URIs found in the apt sources"; exit 1; }

in_chroot() {
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
apt_install() { in_chroot apt-get install -y --no-install-recommends "$@"; }

progress "debootstrap $release (minbase; main, contrib) from $mirror into $root"
debootstrap --variant=minbase --components=main,contrib "$release" "$root" "$mirror"

cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $release $release-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $release-security
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$root/etc/apt/sources.list"
# Mirrors may serve a snapshot whose Release files are past their Valid-Until.
echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99guest"
# No daemon may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"

progress "apt-get update"
in_chroot apt-get update

progress "installing the kernel and its headers"
apt_install $KERNEL_PACKAGES
kernels=("$root"/boot/vmlinuz-*)
[ ${#kernels[@]} -eq 1 ] || { progress "expected one kernel, found: ${kernels[*]}"; exit 1; }
kver=${kernels[0]##*/vmlinuz-}

# zfs-dkms' postinst builds the module for every kernel whose headers are installed,
# and for the running (host) kernel, which it skips since its headers are missing.
progress "installing $ZFS_PACKAGES: dkms builds zfs for $kver (takes minutes)"
apt_install $ZFS_PACKAGES
in_chroot dkms autoinstall -k "$kver"          # no-op when the postinst built it
modules=$(find "$root/lib/modules/$kver" -name 'zfs.ko*')
[ -n "$modules" ] || { progress "no zfs module for $kver"; exit 1; }

progress "installing ganeti, lvm2, python3-pytest, ..."
apt_install $PACKAGES

if [ -n "${UPGRADE_TO[$release]:-}" ]; then
    next=${UPGRADE_TO[$release]}
    progress "downloading $next's $UPGRADE_PACKAGES and what it needs into $UPGRADE_REPO/$next"
    sed "s/^Suites: $release\( .*\)\?$/Suites: $next $next-updates/; s/^Suites: $release-security/Suites: $next-security/" \
        "$root/etc/apt/sources.list.d/debian.sources" >"$root/etc/apt/sources.list.d/upgrade.sources"
    in_chroot apt-get update
    in_chroot apt-get clean
    in_chroot apt-get install -y --no-install-recommends --download-only -t "$next" $UPGRADE_PACKAGES
    rm "$root/etc/apt/sources.list.d/upgrade.sources"
    in_chroot apt-get update
    repo=$root$UPGRADE_REPO/$next
    mkdir -p "$repo"
    mv "$root"/var/cache/apt/archives/*.deb "$repo/"
    # A flat repository (deb [trusted=yes] file:DIR ./) needs only a Packages index.
    for deb in "$repo"/*.deb; do
        dpkg-deb -f "$deb"
        printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "${deb##*/}" "$(stat -c %s "$deb")" \
            "$(sha256sum "$deb" | cut -d' ' -f1)"
    done >"$repo/Packages"
    progress "$(ls "$repo" | grep -c "\.deb$") packages: $(cd "$repo" && ls *.deb | sed "s/_.*//" | tr "\n" " ")"
fi

progress "configuring the guest"
in_chroot update-initramfs -u -k "$kver"
install -m 0755 "$here/guest-init" "$root/usr/local/sbin/guest-init"
echo node1.example.com >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo '/dev/vda / ext4 rw 0 1' >"$root/etc/fstab"
mkdir -p "$root/share"
ls "$root"/etc/ssh/ssh_host_*_key >/dev/null 2>&1 || in_chroot ssh-keygen -A
# Every guest boots from this one image, so the nodes of a two-node cluster share
# their host keys and root's key pair, as Ganeti's own cluster CI arranges it
# (gnt-cluster init --no-ssh-init; gnt-node add --no-ssh-key-check).
install -d -m 0700 "$root/root/.ssh"
in_chroot ssh-keygen -q -t rsa -b 2048 -N '' -C guest-cluster -f /root/.ssh/id_rsa
cp "$root/root/.ssh/id_rsa.pub" "$root/root/.ssh/authorized_keys"
in_chroot dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt"
echo "$kver" >"$out/kernel-version"

progress "cleaning up"
in_chroot apt-get clean
rm -rf "$root"/var/lib/dkms/*/*/build "$root"/tmp/* "$root"/var/tmp/* "$root/usr/sbin/policy-rc.d"
umount "$root/sys" "$root/proc"

progress "making the root file system image ($ROOT_SIZE sparse)"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
truncate -s "$ROOT_SIZE" "$out/root.img"
mkfs.ext4 -q -F -L guest-root -d "$root" "$out/root.img"
rm -rf --one-file-system "$root"

progress "done: kernel $kver, $(grep -E '^(zfsutils-linux|ganeti) ' "$out/packages.txt" | tr '\n' ' ')"
