#!/usr/bin/env bash
# Install what tern needs to build, run and test on Debian 12, as root.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libssl-dev libc-ares-dev
            liblmdb-dev libsasl2-dev check lmdb-utils)
peer_pkgs=(postfix swaks dovecot-lmtpd dnsmasq-base php-cli python3
           python3-aiosmtpd iproute2 sasl2-bin libsasl2-modules procps
           openssl time postgrey libnet-ssleay-perl pflogsumm util-linux
           python3-milter opendkim opendkim-tools python3-dkim)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--with-peers" ] && want+=("${peer_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root" >&2
	exit 69
fi

# Servers installed as test peers must not start system-wide: the tests run
# private instances of their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
stamp=/var/lib/apt/periodic/tern-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
	apt-get update -q
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
