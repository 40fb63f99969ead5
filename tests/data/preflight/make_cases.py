#!/usr/bin/env python3
"""Writes the fixture roots under cases/<case>/ (run from this folder; output is committed).

Each case is a root with the file-based facts (etc/os-release, etc/redhat-release,
proc/meminfo, proc/cpuinfo, proc/self/mountinfo, proc/self/cgroup, sys/fs/cgroup/...,
sys/devices/system/memory/...), a measured.json with the facts that are measured on the
live system and so cannot come from files (arch, sched affinity count, statvfs/statfs of
/home/leo's filesystem), and an `expected` file: "profile NAME" then "CHECK-ID VERDICT"."""
import json, os, shutil

OS = {
 "centos70": ("redhat", "CentOS Linux release 7.0.1406 (Core)\n"),
 "centos79": ('NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n', "CentOS Linux release 7.9.2009 (Core)\n"),
 "rhel7server": ('NAME="Red Hat Enterprise Linux Server"\nVERSION="7.9 (Maipo)"\nID="rhel"\nID_LIKE="fedora"\nVARIANT="Server"\nVARIANT_ID="server"\nVERSION_ID="7.9"\nPRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"\n', "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"),
 "rhel7workstation": ('NAME="Red Hat Enterprise Linux Workstation"\nVERSION="7.6 (Maipo)"\nID="rhel"\nID_LIKE="fedora"\nVARIANT="Workstation"\nVARIANT_ID="workstation"\nVERSION_ID="7.6"\nPRETTY_NAME="Red Hat Enterprise Linux Workstation 7.6 (Maipo)"\n', "Red Hat Enterprise Linux Workstation release 7.6 (Maipo)\n"),
 "centos8": ('NAME="CentOS Linux"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\nPRETTY_NAME="CentOS Linux 8"\n', "CentOS Linux release 8.5.2111\n"),
 "stream9": ('NAME="CentOS Stream"\nVERSION="9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\nPRETTY_NAME="CentOS Stream 9"\n', "CentOS Stream release 9\n"),
 "rocky8": ('NAME="Rocky Linux"\nVERSION="8.9 (Green Obsidian)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.9"\nPRETTY_NAME="Rocky Linux 8.9 (Green Obsidian)"\n', "Rocky Linux release 8.9 (Green Obsidian)\n"),
 "alma9": ('NAME="AlmaLinux"\nVERSION="9.3 (Shamrock Pampas Cat)"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"\n', "AlmaLinux release 9.3 (Shamrock Pampas Cat)\n"),
 "oracle7": ('NAME="Oracle Linux Server"\nVERSION="7.9"\nID="ol"\nID_LIKE="fedora"\nVARIANT="Server"\nVARIANT_ID="server"\nVERSION_ID="7.9"\nPRETTY_NAME="Oracle Linux Server 7.9"\n', "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"),
 "fedora39": ('NAME="Fedora Linux"\nVERSION="39 (Server Edition)"\nID=fedora\nVERSION_ID=39\nVARIANT_ID=server\nPRETTY_NAME="Fedora Linux 39 (Server Edition)"\n', "Fedora release 39 (Thirty Nine)\n"),
 "debian12": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n', None),
 "ubuntu2204": ('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n', None),
 "none": (None, None),
}
GIB = 1 << 30
MEM = {"8g": 8008152, "8g-crash": 7733632, "8e9": 7658904, "7g": 7001424, "4g": 3879704, "64g": 65807996}
ROOTFS = "18 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota\n"
PROC = "20 18 0:4 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
HOME_XFS = "40 18 253:2 / /home rw,relatime shared:30 - xfs /dev/mapper/centos-home rw,attr2,inode64,noquota\n"
XFS, NFS, CIFS = 0x58465342, 0x6969, 0xFF534D42

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f: f.write(text)

def case(name, os_key="centos79", mem="8g", cpus=2, cpuinfo=None, quota=None, mounts=ROOTFS + PROC + HOME_XFS,
         total=19.5e9, avail=15 * GIB, magic=XFS, profile="install", expect=None, extra=None, memblocks=None):
    root = os.path.join("cases", name)
    shutil.rmtree(root, ignore_errors=True)
    osr, rh = OS[os_key]
    if osr == "redhat": osr = None
    if osr: write(f"{root}/etc/os-release", osr)
    if rh: write(f"{root}/etc/redhat-release", rh)
    write(f"{root}/proc/meminfo", f"MemTotal:       {MEM[mem]} kB\nMemFree:         1234567 kB\nMemAvailable:    2345678 kB\n")
    n = cpuinfo if cpuinfo is not None else cpus
    write(f"{root}/proc/cpuinfo", "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel Xeon\n\n" for i in range(n)))
    write(f"{root}/proc/self/mountinfo", mounts)
    if quota is None:
        write(f"{root}/proc/self/cgroup", "0::/system.slice/leo.service\n")
        write(f"{root}/sys/fs/cgroup/system.slice/leo.service/cpu.max", "max 100000\n")
    else:
        quota(root)
    if memblocks:
        size, count = memblocks
        write(f"{root}/sys/devices/system/memory/block_size_bytes", f"{size:x}\n")
        for i in range(count): write(f"{root}/sys/devices/system/memory/memory{i}/state", "online\n")
    write(f"{root}/home/.keep", "")  # the mount point /home exists in every case
    if extra: extra(root)
    write(f"{root}/measured.json", json.dumps({"arch": "x86_64", "vcpus": cpus, "total_bytes": int(total),
                                               "available_bytes": int(avail), "statfs_magic": magic}, indent=2) + "\n")
    verdicts = {"os": "pass", "arch": "pass", "vcpus": "pass", "memory": "pass", "disk": "pass",
                "home-not-nfs": "pass", "home-symlink": "pass"}
    if profile == "upgrade": verdicts["upgrade-space"] = "pass"
    if profile == "rest-api": verdicts = {"memory": "pass"}
    verdicts.update(expect or {})
    write(f"{root}/expected", f"profile {profile}\n" + "".join(f"{k} {v}\n" for k, v in verdicts.items()))

def v1_quota(q, p="100000"):
    def f(root):
        write(f"{root}/proc/self/cgroup", "4:cpu,cpuacct:/docker/0123abcd\n3:memory:/docker/0123abcd\n")
        # A container sees its own cgroup as the hierarchy's root: /docker/... is absent.
        write(f"{root}/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", q + "\n")
        write(f"{root}/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", p + "\n")
    return f

def v2_max(text):
    def f(root):
        write(f"{root}/proc/self/cgroup", "0::/machine.slice/leo.scope\n")
        write(f"{root}/sys/fs/cgroup/machine.slice/cpu.max", text)
        write(f"{root}/sys/fs/cgroup/machine.slice/leo.scope/cpu.max", "max 100000\n")
    return f

OSFAIL = {"os": "inhibitor"}
case("centos70-redhat-release-only", "centos70")
case("centos79-8gib-vm", "centos79")
case("rhel7-server", "rhel7server")
case("rhel7-workstation", "rhel7workstation")
case("centos8", "centos8", expect=OSFAIL)
case("centos-stream9", "stream9", expect=OSFAIL)
case("rocky8", "rocky8", expect=OSFAIL)
case("alma9", "alma9", expect=OSFAIL)
case("oracle7", "oracle7", expect=OSFAIL)
case("fedora39", "fedora39", expect=OSFAIL)
case("debian12", "debian12", expect=OSFAIL)
case("ubuntu2204", "ubuntu2204", expect=OSFAIL)
case("no-os-release", "none", expect=OSFAIL)
case("mem-8gib-vm-crashkernel", mem="8g-crash")
case("mem-8e9-bytes-vm", mem="8e9")
case("mem-7gib-vm", mem="7g", expect={"memory": "inhibitor"})
case("mem-4gib-vm", mem="4g", expect={"memory": "inhibitor"})
case("mem-8gib-installed-blocks", mem="8g-crash", memblocks=(128 << 20, 64))
case("mem-7gib-installed-blocks", mem="7g", memblocks=(128 << 20, 56), expect={"memory": "inhibitor"})
case("rest-api-4gib", mem="4g", profile="rest-api", expect={"memory": "inhibitor"})
case("cpu-1", cpus=1, expect={"vcpus": "inhibitor"})
case("cpu-2", cpus=2)
case("cpu-8-quota-1.5-v1", cpus=8, quota=v1_quota("150000"), expect={"vcpus": "inhibitor"})
case("cpu-8-quota-1.5-v2-parent", cpus=8, quota=v2_max("150000 100000\n"), expect={"vcpus": "inhibitor"})
case("cpu-4-quota-2-v2", cpus=4, quota=v2_max("200000 100000\n"))
case("cpu-4-quota-unlimited-v1", cpus=4, quota=v1_quota("-1"))
case("cpu-malformed-cpu-max", cpus=4, quota=v2_max("lots\n"), expect={"vcpus": "warning"})
case("disk-20gb", total=20e9 * 0.98)
case("disk-15gb", total=15e9 * 0.98, expect={"disk": "inhibitor"})
case("upgrade-enough-space", profile="upgrade")
case("upgrade-1gib-free", profile="upgrade", avail=GIB, expect={"upgrade-space": "inhibitor"})
case("home-nfs4", mounts=ROOTFS + PROC + "45 18 0:48 / /home rw,relatime shared:33 - nfs4 filer:/export/home rw,vers=4.1\n",
     magic=NFS, expect={"home-not-nfs": "inhibitor"})
case("home-leo-autofs-nfs4", mounts=ROOTFS + PROC +
     "44 18 0:45 / /home rw,relatime shared:31 - autofs auto.home rw,fd=6,pgrp=1,timeout=300,minproto=5,maxproto=5,indirect\n"
     "52 44 0:50 / /home/leo rw,relatime shared:40 - nfs4 filer:/export/leo rw,vers=4.1\n",
     magic=NFS, expect={"home-not-nfs": "inhibitor"}, extra=lambda root: write(f"{root}/home/leo/.keep", ""))
case("home-autofs-not-yet-mounted", mounts=ROOTFS + PROC +
     "44 18 0:45 / /home rw,relatime shared:31 - autofs auto.home rw,fd=6,indirect\n",
     magic=0x0187, expect={"home-not-nfs": "warning"})
case("home-bind-of-nfs", mounts=ROOTFS + PROC +
     "45 18 0:48 / /srv/nfs rw,relatime shared:33 - nfs4 filer:/export rw,vers=4.1\n"
     "46 18 0:48 /home /home rw,relatime shared:33 - nfs4 filer:/export rw,vers=4.1\n",
     magic=NFS, expect={"home-not-nfs": "inhibitor"})
case("nfs-server-local-home", mounts=ROOTFS + PROC + HOME_XFS +
     "60 20 0:52 / /proc/fs/nfsd rw,relatime shared:45 - nfsd nfsd rw\n"
     "61 18 0:53 / /var/lib/nfs/rpc_pipefs rw,relatime shared:46 - rpc_pipefs sunrpc rw\n"
     "62 18 0:54 / /home-archive rw,relatime shared:47 - nfs4 filer:/archive rw,vers=4.1\n")
case("home-cifs", mounts=ROOTFS + PROC + "45 18 0:48 / /home rw,relatime shared:33 - cifs //filer/home rw,vers=3.0\n",
     magic=CIFS, expect={"home-not-nfs": "warning"})
def leo_symlink(root):
    os.makedirs(f"{root}/data/leo", exist_ok=True)
    os.makedirs(f"{root}/home", exist_ok=True)
    os.symlink("/data/leo", f"{root}/home/leo")
case("home-leo-symlink-to-local", extra=leo_symlink, mounts=ROOTFS + PROC + HOME_XFS +
     "41 18 253:3 / /data rw,relatime shared:31 - xfs /dev/mapper/data rw\n", expect={"home-symlink": "warning"})
case("home-leo-symlink-to-nfs", extra=leo_symlink, mounts=ROOTFS + PROC + HOME_XFS +
     "41 18 0:49 / /data rw,relatime shared:31 - nfs4 filer:/data rw,vers=4.1\n",
     magic=NFS, expect={"home-symlink": "warning", "home-not-nfs": "inhibitor"})
