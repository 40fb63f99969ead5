#!/usr/bin/env python3
"""Generate the benchmark repository: N synthetic packages shaped like CentOS 7 primary
entries (provides, requires, files; no changelog) plus the real broker packages of a
createrepo_c repository (the test build's), with repodata/repomd.xml and a gzip primary.

usage: bench/make_repo.py SOURCE_REPO OUT_DIR [N=60000]
  SOURCE_REPO  a yum repository holding the broker packages (build/test-packages/repo)
  OUT_DIR      created; receives the broker .rpm files (same hrefs) and repodata/
"""
import gzip
import hashlib
import os
import random
import re
import shutil
import sys
import time

NS = ('<metadata xmlns="http://linux.duke.edu/metadata/common" '
      'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{}">\n')
LIBS = ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "libz.so.1", "libssl.so.10",
        "libcrypto.so.10", "libglib-2.0.so.0", "libxml2.so.2", "libcurl.so.4", "libstdc++.so.6",
        "libgcc_s.so.1", "libselinux.so.1", "libsystemd.so.0", "libpcre.so.1", "libbz2.so.1"]
WORDS = ("tools library daemon utility python perl devel libs common data plugin client server "
         "doc core extra gnome kde qt java ruby lua fonts").split()


def synthetic(i, rnd):
    """One <package> element of about 1.8 KB, as createrepo writes CentOS 7's."""
    name = f"{rnd.choice(WORDS)}-{rnd.choice(WORDS)}-{i}"
    ver = f"{rnd.randint(0, 9)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}"
    rel = f"{rnd.randint(1, 40)}.el7"
    arch = rnd.choice(["x86_64", "x86_64", "x86_64", "noarch", "i686"])
    digest = hashlib.sha256(name.encode()).hexdigest()
    size = rnd.randint(5_000, 30_000_000)
    provides = "".join(
        f'      <rpm:entry name="{name}{suffix}" flags="EQ" epoch="0" ver="{ver}" rel="{rel}"/>\n'
        for suffix in ["", "(x86-64)", f"-libs"][: rnd.randint(1, 3)])
    requires = "".join(
        f'      <rpm:entry name="{lib}()(64bit)"/>\n' for lib in rnd.sample(LIBS, rnd.randint(3, 9)))
    requires += '      <rpm:entry name="rtld(GNU_HASH)"/>\n      <rpm:entry name="/bin/sh" pre="1"/>\n'
    files = "".join(f"    <file>/usr/bin/{name}{n}</file>\n" for n in range(rnd.randint(1, 4)))
    files += f'    <file type="dir">/etc/{name}</file>\n    <file>/etc/{name}/{name}.conf</file>\n'
    return (
        f'<package type="rpm">\n  <name>{name}</name>\n  <arch>{arch}</arch>\n'
        f'  <version epoch="0" ver="{ver}" rel="{rel}"/>\n'
        f'  <checksum type="sha256" pkgid="YES">{digest}</checksum>\n'
        f'  <summary>The {name} package &amp; its {rnd.choice(WORDS)} files</summary>\n'
        f'  <description>{name} provides the {rnd.choice(WORDS)} {rnd.choice(WORDS)} used by '
        f'{rnd.choice(WORDS)} applications on CentOS 7. This package contains the runtime '
        f'{rnd.choice(WORDS)} and its configuration.</description>\n'
        f'  <packager>CentOS BuildSystem &lt;http://bugs.centos.org&gt;</packager>\n'
        f'  <url>http://www.example.org/{name}</url>\n'
        f'  <time file="{1588000000 + i}" build="{1587000000 + i}"/>\n'
        f'  <size package="{size}" installed="{size * 3}" archive="{size * 3 + 1024}"/>\n'
        f'  <location href="Packages/{name}-{ver}-{rel}.{arch}.rpm"/>\n'
        f'  <format>\n    <rpm:license>GPLv2+</rpm:license>\n    <rpm:vendor>CentOS</rpm:vendor>\n'
        f'    <rpm:group>System Environment/Libraries</rpm:group>\n'
        f'    <rpm:buildhost>x86-0{i % 4}.bsys.centos.org</rpm:buildhost>\n'
        f'    <rpm:sourcerpm>{name}-{ver}-{rel}.src.rpm</rpm:sourcerpm>\n'
        f'    <rpm:header-range start="4504" end="{4504 + size % 90000}"/>\n'
        f'    <rpm:provides>\n{provides}    </rpm:provides>\n'
        f'    <rpm:requires>\n{requires}    </rpm:requires>\n{files}  </format>\n</package>\n')


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    source, out = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 60000
    repomd = open(os.path.join(source, "repodata", "repomd.xml")).read()
    href = re.search(r'<data type="primary">.*?<location href="([^"]+)"', repomd, re.S).group(1)
    with gzip.open(os.path.join(source, href), "rt", encoding="utf-8") as f:
        real = re.findall(r'<package type="rpm">.*?</package>', f.read(), re.S)
    os.makedirs(os.path.join(out, "repodata"), exist_ok=True)
    for element in real:
        rpm = re.search(r'<location href="([^"]+)"', element).group(1)
        os.makedirs(os.path.dirname(os.path.join(out, rpm)) or out, exist_ok=True)
        shutil.copyfile(os.path.join(source, rpm), os.path.join(out, rpm))
    rnd = random.Random(14)
    tmp = os.path.join(out, "repodata", "primary.xml.gz.tmp")
    open_hash, open_size = hashlib.sha256(), 0
    with gzip.open(tmp, "wb", compresslevel=6) as gz:
        def put(text):
            nonlocal open_size
            data = text.encode()
            open_hash.update(data)
            open_size += len(data)
            gz.write(data)
        put('<?xml version="1.0" encoding="UTF-8"?>\n' + NS.format(count + len(real)))
        middle = count // 2
        for i in range(count):
            if i == middle:  # the broker's entries in the middle, as a sorted primary would have them
                for element in real:
                    put(element + "\n")
            put(synthetic(i, rnd))
        put("</metadata>\n")
    digest = hashlib.sha256(open(tmp, "rb").read()).hexdigest()
    name = f"repodata/{digest}-primary.xml.gz"
    os.replace(tmp, os.path.join(out, name))
    now = int(time.time())
    with open(os.path.join(out, "repodata", "repomd.xml"), "w") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<repomd xmlns="http://linux.duke.edu/metadata/repo" '
                f'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>{now}</revision>\n'
                f'  <data type="primary">\n    <checksum type="sha256">{digest}</checksum>\n'
                f'    <open-checksum type="sha256">{open_hash.hexdigest()}</open-checksum>\n'
                f'    <location href="{name}"/>\n    <timestamp>{now}</timestamp>\n'
                f'    <size>{os.path.getsize(os.path.join(out, name))}</size>\n'
                f'    <open-size>{open_size}</open-size>\n  </data>\n</repomd>\n')
    print(f"{count + len(real)} packages, primary {open_size} bytes ({os.path.getsize(os.path.join(out, name))} "
          f"compressed): {os.path.join(out, name)}")


if __name__ == "__main__":
    main()
