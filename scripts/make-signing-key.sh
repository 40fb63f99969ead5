#!/bin/bash
# Make a throwaway RPM signing key in a new GNUPGHOME and export its public key.
#
# usage: scripts/make-signing-key.sh GNUPGHOME NAME PUBKEY_OUT
set -euo pipefail
home=${1:?usage: make-signing-key.sh GNUPGHOME NAME PUBKEY_OUT}
name=${2:?usage: make-signing-key.sh GNUPGHOME NAME PUBKEY_OUT}
out=${3:?usage: make-signing-key.sh GNUPGHOME NAME PUBKEY_OUT}
mkdir -p "$home"
chmod 0700 "$home"
export GNUPGHOME=$home
gpg --batch --quiet --passphrase '' --quick-gen-key "$name <$name@example.invalid>" rsa2048 sign never 2>/dev/null
gpg --batch --quiet --armor --export "$name" > "$out"
