"""Names, cut in one place: a volume's dataset and the device paths udev gives it.

Imported by the LVM pass-through's fast path too, so it imports nothing.
"""

# udev's stable link to a zvol (zfsutils-linux's 60-zvol.rules), unlike the
# /dev/zdN it points to, whose number changes.
DEVICE_ROOT = "/dev/zvol"


def device_link(dataset):
    """/dev/zvol/<dataset>: the link of a zvol, or the directory of a parent's zvols."""
    return f"{DEVICE_ROOT}/{dataset}"


def child(parent, name):
    """The dataset `name` directly under `parent`."""
    return f"{parent}/{name}"


def split(dataset):
    """(parent, name) of a dataset: ("tank/g", "x") for "tank/g/x"."""
    parent, _slash, name = dataset.rpartition("/")
    return parent, name


def lv_path(vg, lv):
    """/dev/<vg>/<lv>: the path Ganeti hard-wires for every LV."""
    return f"/dev/{vg}/{lv}"
