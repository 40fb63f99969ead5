#!/bin/bash
# Build the packages the upgrade tests and the demo use, once, into OUTDIR:
#   OUTDIR/RPM-GPG-KEY-leo-test      the public key of a throwaway signing key (OUTDIR/gnupg)
#   OUTDIR/repo/                     a yum repository made by createrepo_c: signed broker
#                                    9.0.7, 9.1.2, 9.1.10, 9.2.0~rc1 and 9.2.0
#   OUTDIR/unsigned/                 an unsigned 9.1.2 (and its own repository)
#   OUTDIR/epoch/                    a repository with a signed 1:9.0.1 (epoch 1 beats 9.2.0)
#   OUTDIR/bad/                      a signed 9.3.0 whose last migration fails
#   OUTDIR/crash/                    a signed 9.3.1 whose migration stops the database server
#   OUTDIR/repo_02/                  a repository (createrepo_c, revision 1334670929) of two
#                                    packages that are not the broker, named as createrepo_c's
#                                    test repository repo_02: fake_bash-1.1.1-1.x86_64 and
#                                    super_kernel-6.0.1-2.x86_64 (the leo::repo tests serve it)
#   OUTDIR/other/                    packages that are not the broker (hello-2.0-1.x86_64-signed
#                                    signed by OUTDIR/RPM-GPG-KEY-hello-test), named as
#                                    rpm's test packages: foo-1.0-1.noarch, hello-1.0-1.i386,
#                                    hello-2.0-1.i686 (refusals: not the broker, wrong arch)
# usage: scripts/build-test-packages.sh OUTDIR
set -euo pipefail
out=${1:?usage: build-test-packages.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)

# plain_rpm OUTDIR NAME VERSION RELEASE ARCH [LINE...]: an unsigned package with rpmbuild from
# a .spec written here. Each LINE is a preamble line ("Requires: bash", "Provides: x = 1")
# or "file:/PATH", a small text file the package owns.
plain_rpm() {
  local outdir=$1 name=$2 version=$3 release=$4 arch=$5
  shift 5
  local top line files=() spec
  top=$(mktemp -d "$out/.rpmbuild.XXXXXX") # under OUTDIR: a failed build leaves nothing elsewhere
  mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
  spec=$top/SPECS/$name.spec
  {
    printf 'Name: %s\nVersion: %s\nRelease: %s\nSummary: %s, a package built by the tests\n' \
      "$name" "$version" "$release" "$name"
    printf 'License: MIT\n'
    if [[ $arch == noarch ]]; then printf 'BuildArch: noarch\n'; fi
    for line in "$@"; do
      case $line in
        file:*) files+=("${line#file:}") ;;
        *) printf '%s\n' "$line" ;;
      esac
    done
    printf '\n%%description\n%s, built by scripts/build-test-packages.sh.\n\n%%install\n' "$name"
    for line in "${files[@]}"; do
      printf 'mkdir -p %%{buildroot}%s\necho "%s %s" > %%{buildroot}%s\n' \
        "$(dirname "$line")" "$name" "$version" "$line"
    done
    printf '\n%%files\n'
    for line in "${files[@]}"; do printf '%s\n' "$line"; done
  } > "$spec"
  # BuildArch: i686 is refused on an x86_64 host ("No compatible architectures"); --target is not
  rpmbuild -bb --quiet --target "$arch" --define "_topdir $top" --define "_dbpath /var/lib/rpm" \
    --define "_build_id_links none" "$spec" >&2
  cp "$top/RPMS/$arch/$name-$version-$release.$arch.rpm" "$outdir"/
  rm -rf "$top"
}
rm -rf "$out"
mkdir -p "$out"/repo "$out"/repo_02 "$out"/other "$out"/unsigned "$out"/epoch "$out"/bad "$out"/bad-sql "$out"/crash "$out"/crash-sql
chmod 0755 "$out"
out=$(cd "$out" && pwd) # absolute: rpmbuild runs %install in another directory
"$here"/make-signing-key.sh "$out"/gnupg leo-test "$out"/RPM-GPG-KEY-leo-test
export GNUPGHOME=$out/gnupg
for v in 9.0.7 9.1.2 9.1.10 9.2.0~rc1 9.2.0; do
  SIGN_KEY=leo-test "$here"/build-broker-rpm.sh "$v" "$out"/repo >/dev/null
done
createrepo_c --quiet "$out"/repo
EPOCH=1 SIGN_KEY=leo-test "$here"/build-broker-rpm.sh 9.0.1 "$out"/epoch >/dev/null
createrepo_c --quiet "$out"/epoch
"$here"/build-broker-rpm.sh 9.1.2 "$out"/unsigned >/dev/null
createrepo_c --quiet "$out"/unsigned
cat > "$out"/bad-sql/V9.3.0.1__broken.sql <<'SQL'
-- A migration that fails half-way: the first statement works, the second cannot.
ALTER TABLE work_queue ADD COLUMN owner varchar(64);
UPDATE work_queue SET owner = no_such_column;
SQL
cat > "$out"/crash-sql/V9.3.1.1__server_stops.sql <<'SQL'
-- The database server stops in the middle of this migration (an immediate shutdown of
-- the postmaster: the backend's working directory is the data directory).
ALTER TABLE work_queue ADD COLUMN owner varchar(64);
COPY (SELECT 1) TO PROGRAM 'kill -QUIT $(head -n1 postmaster.pid)';
SELECT pg_sleep(5);
SQL
EXTRA_MIGRATIONS=$out/crash-sql SIGN_KEY=leo-test "$here"/build-broker-rpm.sh 9.3.1 "$out"/crash >/dev/null
EXTRA_MIGRATIONS=$out/bad-sql SIGN_KEY=leo-test "$here"/build-broker-rpm.sh 9.3.0 "$out"/bad >/dev/null
plain_rpm "$out"/repo_02 fake_bash 1.1.1 1 x86_64 "Requires: super_kernel" "Provides: bash" \
  file:/usr/bin/fake_bash
plain_rpm "$out"/repo_02 super_kernel 6.0.1 2 x86_64 "Provides: super_kernel = 6.0.0" \
  "Obsoletes: super_kernel = 5.9.0" "Conflicts: super_kernel < 4.0.0" file:/usr/bin/super_kernel
createrepo_c --quiet --no-database --revision 1334670929 "$out"/repo_02
plain_rpm "$out"/other foo 1.0 1 noarch "Provides: hi"
plain_rpm "$out"/other hello 1.0 1 i386 file:/usr/local/bin/hello
plain_rpm "$out"/other hello 2.0 1 i686 file:/usr/bin/hello
# hello 2.0 x86_64, unsigned, and a copy signed by a second throwaway key ("hello-test",
# OUTDIR/gnupg-hello, public key OUTDIR/RPM-GPG-KEY-hello-test, its long key id in
# OUTDIR/hello-test.keyid): a signer that is not the broker's.
plain_rpm "$out"/other hello 2.0 1 x86_64 file:/usr/bin/hello
"$here"/make-signing-key.sh "$out"/gnupg-hello hello-test "$out"/RPM-GPG-KEY-hello-test
cp "$out"/other/hello-2.0-1.x86_64.rpm "$out"/other/hello-2.0-1.x86_64-signed.rpm
GNUPGHOME=$out/gnupg-hello rpmsign --define '__gpg /usr/bin/gpg' --define "_gpg_name hello-test" \
  --addsign "$out"/other/hello-2.0-1.x86_64-signed.rpm >&2
GNUPGHOME=$out/gnupg-hello gpg --batch --with-colons --list-keys hello-test \
  | awk -F: '$1 == "pub" { print tolower($5); exit }' > "$out"/hello-test.keyid
GNUPGHOME=$out/gnupg-hello gpgconf --kill gpg-agent 2>/dev/null || true
gpgconf --kill gpg-agent 2>/dev/null || true
echo "$out"
