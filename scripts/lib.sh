# Shared by scripts/test.sh and scripts/demo.sh: install what is missing, configure, build.
# Debian 12 packages only (apt-get); idempotent.

LEO_PACKAGES=(
  build-essential cmake pkg-config git
  librpm-dev rpm gnupg
  libcurl4-openssl-dev libarchive-dev libssl-dev libpq-dev libxml2-dev libinih-dev
  libfmt-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  postgresql libnss-wrapper passwd createrepo-c pgbouncer tinyproxy rpmlint dnf
  clang libclang-rt-14-dev
  python3
  libnewt-dev tmux sudo
)

leo_install_deps() {
  local missing=()
  for p in "${LEO_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
      echo "scripts: missing packages (${missing[*]}); run as root, or install them with apt-get" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

leo_build() {
  local dir=${1:-build}
  echo "==> configuring and building in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEO_WERROR=ON >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
