#!/usr/bin/env bash
# System packages the book uses: FashionMNIST (Debian's dataset-fashion-mnist) and, for the browser tests,
# Chromium with its driver. Installed only on Debian/Ubuntu as root or with passwordless sudo; anywhere else
# this prints how to get the data and carries on (dldna can also download and verify the files itself).
set -u
packages=(dataset-fashion-mnist chromium chromium-driver)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  missing=("${packages[@]}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); elif sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else sudo_cmd=(none); fi
  if [ "${sudo_cmd[0]:-}" != none ]; then
    echo "Installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && exit 0
    echo "apt-get could not install ${missing[*]}." >&2
  fi
fi
cat >&2 <<MSG
Note: could not install ${missing[*]} here (not Debian/Ubuntu, or no root/sudo).
 - FashionMNIST: dldna downloads and verifies it on first use when the machine has internet; otherwise put
   the four *-ubyte.gz files in ~/.cache/dldna/fashion-mnist or in a folder named by \$DLDNA_DATA.
 - Browser tests of the website skip without /usr/bin/chromium.
MSG
exit 0
