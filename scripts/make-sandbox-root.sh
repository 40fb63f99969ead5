#!/bin/bash
# Create a minimal sandbox root that looks like a CentOS 7 host to leo-installer:
# etc/os-release, etc/redhat-release, and empty account files (passwd, group, shadow,
# gshadow with root only). Directories are made traversable (0755) because the
# internal PostgreSQL runs as the root's leo uid and must reach /home/leo/pgsql.
#
# usage: scripts/make-sandbox-root.sh DIR [--os centos7|rhel7|rocky8|debian12]
set -euo pipefail
root=${1:?usage: make-sandbox-root.sh DIR [--os centos7|rhel7|rocky8|debian12]}
os=centos7
if [[ ${2:-} == --os ]]; then os=${3:?--os needs a value}; fi

mkdir -p "$root"/etc "$root"/home "$root"/var/lib "$root"/tmp
chmod 0755 "$root" "$root"/etc "$root"/home "$root"/var "$root"/var/lib
chmod 1777 "$root"/tmp
# every parent of the root must be traversable by the leo uid as well
d=$(cd "$root" && pwd)
while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done

case $os in
centos7)
  cat > "$root"/etc/os-release <<'OS'
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
OS
  echo "CentOS Linux release 7.9.2009 (Core)" > "$root"/etc/redhat-release ;;
rhel7)
  cat > "$root"/etc/os-release <<'OS'
NAME="Red Hat Enterprise Linux Server"
VERSION="7.9 (Maipo)"
ID="rhel"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="7.9"
PRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"
OS
  echo "Red Hat Enterprise Linux Server release 7.9 (Maipo)" > "$root"/etc/redhat-release ;;
rocky8)
  cat > "$root"/etc/os-release <<'OS'
NAME="Rocky Linux"
VERSION="8.9 (Green Obsidian)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.9"
PRETTY_NAME="Rocky Linux 8.9 (Green Obsidian)"
OS
  ;;
debian12)
  cp /etc/os-release "$root"/etc/os-release 2>/dev/null || cp /usr/lib/os-release "$root"/etc/os-release ;;
*) echo "make-sandbox-root.sh: unknown --os '$os' (centos7, rhel7, rocky8, debian12)" >&2; exit 2 ;;
esac

[[ -f $root/etc/passwd ]] || echo 'root:x:0:0:root:/root:/bin/bash' > "$root"/etc/passwd
[[ -f $root/etc/group ]] || echo 'root:x:0:' > "$root"/etc/group
[[ -f $root/etc/shadow ]] || echo 'root:*:19000:0:99999:7:::' > "$root"/etc/shadow
[[ -f $root/etc/gshadow ]] || echo 'root:*::' > "$root"/etc/gshadow
chmod 0644 "$root"/etc/passwd "$root"/etc/group
chmod 0600 "$root"/etc/shadow "$root"/etc/gshadow
