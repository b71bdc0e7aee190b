#!/usr/bin/env bash
# Installs nginx (Debian's nginx-light), the bench's reference proxy, when it
# is missing and apt-get can run without a password. Never fails: without
# nginx the harness leaves the nginx row out.
command -v nginx >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/nginx ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench/deps: nginx missing and apt-get unavailable; the nginx reference is skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "bench/deps: nginx missing and sudo needs a password; the nginx reference is skipped" >&2
    exit 0
  fi
  sudo="sudo -n"
fi
echo "bench/deps: installing nginx-light" >&2
{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx-light; } >/dev/null 2>&1 ||
  echo "bench/deps: installing nginx-light failed; the nginx reference is skipped" >&2
exit 0
