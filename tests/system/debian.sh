#!/usr/bin/env bash
# System test: kim's Debian package on this (Debian) machine, as an operator
# meets it. Builds it (debian/build-deb --debug), installs it with dpkg and
# checks: kim --version names the commit, man -w kim, the completions, the
# unit, sysusers and tmpfiles files, the kim user, the conffile refused by
# check-config for its CHANGE-ME placeholders; dpkg -r keeps /var/lib/kim and
# the conffile; installing again (the upgrade path) works; purge keeps the
# store and says so. Leaves the machine as it found it.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "debian.sh: FAIL: $*" >&2; exit 1; }

if dpkg -s kim >/dev/null 2>&1; then fail "a kim package is already installed here"; fi
had_user=0; id kim >/dev/null 2>&1 && had_user=1
cleanup() {
  dpkg -P kim >/dev/null 2>&1 || true
  rm -rf /var/lib/kim /etc/kim
  [ "$had_user" = 1 ] || userdel kim 2>/dev/null || true
}
trap cleanup EXIT

start=$(date +%s)
bash debian/build-deb --debug >/dev/null
deb=$(ls -t target/debian/kim_*.deb | head -1)
echo "package: $deb ($(du -h "$deb" | cut -f1), built in $(( $(date +%s) - start )) s with the debug binary)"

dpkg -i "$deb" > /tmp/kim-dpkg.log 2>&1 || { cat /tmp/kim-dpkg.log; fail "dpkg -i"; }
grep -q "kim is installed, not enabled" /tmp/kim-dpkg.log || fail "no next-steps message"

commit=$(git rev-parse --short=12 HEAD)
/usr/bin/kim --version | grep -qF "($commit)" || fail "kim --version: $(/usr/bin/kim --version), HEAD $commit"
man -w kim | grep -q '/usr/share/man/man1/kim.1.gz' || fail "man -w kim"
zcat /usr/share/man/man1/kim.1.gz | grep -q 'send' || fail "the man page lacks kim send"
for f in /usr/share/bash-completion/completions/kim /usr/share/zsh/vendor-completions/_kim \
         /usr/share/fish/vendor_completions.d/kim.fish /usr/lib/systemd/system/kim.service /usr/lib/systemd/system/kim.socket \
         /usr/lib/sysusers.d/kim.conf /usr/lib/tmpfiles.d/kim.conf /usr/share/doc/kim/examples/kim.example.toml; do
  [ -s "$f" ] || fail "missing $f"
done
id kim >/dev/null || fail "no kim user"
[ "$(stat -c '%U:%G %a' /var/lib/kim)" = "kim:kim 700" ] || fail "/var/lib/kim is $(stat -c '%U:%G %a' /var/lib/kim)"
[ "$(stat -c '%U:%G %a' /etc/kim/kim.toml)" = "root:kim 640" ] || fail "/etc/kim/kim.toml is $(stat -c '%U:%G %a' /etc/kim/kim.toml)"

set +e
out=$(/usr/bin/kim check-config /etc/kim/kim.toml 2>&1); code=$?
set -e
[ "$code" = 2 ] || fail "check-config on the placeholder conffile exited $code: $out"
for key in '[[forces]] id' '[[forces]] client_names' '[mail] admin_email' '[mail.smtp] host'; do
  grep -qF -- "$key" <<<"$out" || fail "check-config does not name $key: $out"
done
echo "check-config on the packaged conffile: exit 2, $out"

# An operator's edits and a store survive remove; the conffile stays too.
echo "# edited" >> /etc/kim/kim.toml
mkdir -p /var/lib/kim/store && echo data > /var/lib/kim/store/marker
dpkg -r kim >/dev/null
[ ! -e /usr/bin/kim ] || fail "dpkg -r left /usr/bin/kim"
[ -f /var/lib/kim/store/marker ] || fail "dpkg -r deleted the store"
grep -q "# edited" /etc/kim/kim.toml || fail "dpkg -r lost the edited conffile"

# Installing again over the kept files (the upgrade path).
dpkg -i "$deb" > /tmp/kim-dpkg.log 2>&1 || { cat /tmp/kim-dpkg.log; fail "second dpkg -i"; }
/usr/bin/kim --version >/dev/null || fail "kim after reinstall"
grep -q "# edited" /etc/kim/kim.toml || fail "reinstall replaced the edited conffile"
dpkg -i "$deb" > /tmp/kim-dpkg.log 2>&1 || { cat /tmp/kim-dpkg.log; fail "upgrade over an installed kim"; }

# Purge: the store stays, and the operator is told where it is.
dpkg -P kim > /tmp/kim-dpkg.log 2>&1 || { cat /tmp/kim-dpkg.log; fail "dpkg -P"; }
grep -q "Left in place on purpose" /tmp/kim-dpkg.log || fail "purge did not say what it kept"
[ -f /var/lib/kim/store/marker ] || fail "purge deleted the store"
echo "debian.sh: package installs, refuses its placeholders, removes and purges keeping the store: OK"
