#!/bin/bash
# Build the packages the upgrade tests and the demo use, once, into OUTDIR:
#   OUTDIR/RPM-GPG-KEY-leo-test      the public key of a throwaway signing key (OUTDIR/gnupg)
#   OUTDIR/repo/                     a yum repository made by createrepo_c: signed broker
#                                    9.0.7, 9.1.2, 9.1.10, 9.2.0~rc1 and 9.2.0
#   OUTDIR/unsigned/                 an unsigned 9.1.2 (and its own repository)
#   OUTDIR/epoch/                    a repository with a signed 1:9.0.1 (epoch 1 beats 9.2.0)
#   OUTDIR/bad/                      a signed 9.3.0 whose last migration fails
#   OUTDIR/crash/                    a signed 9.3.1 whose migration stops the database server
# usage: scripts/build-test-packages.sh OUTDIR
set -euo pipefail
out=${1:?usage: build-test-packages.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out"/repo "$out"/unsigned "$out"/epoch "$out"/bad "$out"/bad-sql "$out"/crash "$out"/crash-sql
chmod 0755 "$out"
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
gpgconf --kill gpg-agent 2>/dev/null || true
echo "$out"
