"""LVM emulation: ZFS answers the LVM commands Ganeti runs for one VG.

COMMANDS is the one list of wrapped tools; the package diverts each of them
in /usr/sbin and /sbin (dpkg-divert; debian/*.preinst) and installs a stub that calls
ganeti_zfs.lvm.main.main(<command>).
"""

# lvm2's exit status for "command failed" (lvm2's errors.h, ECMD_FAILED),
# what every refused emulated command exits with.
EXIT_FAILED = 5

COMMANDS = (
    "lvs",
    "vgs",
    "pvs",
    "lvcreate",
    "lvremove",
    "lvrename",
    "lvchange",
    "lvextend",
    "pvchange",
    "vgreduce",
    # What admins type (issue #16); Ganeti never runs them. `lvm` itself is
    # not wrapped: it is the binary every wrapper execs (decide.real_tool).
    "lvresize",
    "vgchange",
    "lvscan",
    "lvdisplay",
    "vgdisplay",
    "pvscan",
)
