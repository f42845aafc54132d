#!/usr/bin/env bash
# System test: kim delivers into Debian's Postfix.
#
# Postfix listens on loopback port 25 with STARTTLS required
# (smtpd_tls_security_level = encrypt) and a certificate from the test CA
# (`kim certs dev`), and delivers the school domains into maildirs. kim runs
# for real (`kim serve`, the binary cargo built), curl is the police client,
# and the test reads the messages back from the maildirs and checks them.
#
# Needs root (it installs and configures Postfix). Usage:
#   tests/system/postfix.sh [path/to/kim]      (default: target/debug/kim)
# Leaves Postfix running (configured) so `cargo bench --bench delivery` can
# use it afterwards with KIM_BENCH_SMTP_CA=<printed CA path>.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/system/lib.sh

KIM=${1:-target/debug/kim}
[ -x "$KIM" ] || { echo "no kim binary at $KIM (cargo build first)"; exit 2; }
KIM=$(realpath "$KIM")

fail() { echo "FAIL: $*"; exit 1; }

echo "== Postfix"
if ! command -v postfix >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq postfix >/dev/null
fi

WORK=/var/tmp/kim-system
rm -rf "$WORK"
mkdir -p "$WORK"
# Dev certificates, a master key and kim.toml (the `kim::dev` template).
"$KIM" dev-init --out "$WORK" --smtp-ca certs/ca.crt >/dev/null

# Postfix's own copy of the certificate (it must be readable by root only).
install -d -m 0755 /etc/postfix/kim-test
install -m 0644 "$WORK/certs/server.crt" /etc/postfix/kim-test/server.crt
install -m 0600 "$WORK/certs/server.key" /etc/postfix/kim-test/server.key

VMAIL=/var/mail/vhosts
rm -rf "$VMAIL"
id vmail >/dev/null 2>&1 || useradd --system --home-dir "$VMAIL" --shell /usr/sbin/nologin vmail
install -d -o vmail -g vmail "$VMAIL"
cat > /etc/postfix/vmailbox <<'EOF'
dsl@maidstone.example      maidstone.example/dsl/
deputy@maidstone.example   maidstone.example/deputy/
dsl@oakwood.example        oakwood.example/dsl/
safeguarding@council.example council.example/safeguarding/
EOF
[ -f /etc/postfix/main.cf ] || cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf 2>/dev/null || touch /etc/postfix/main.cf
postmap /etc/postfix/vmailbox
postconf -e \
  "compatibility_level = 3.6" \
  "myhostname = localhost" \
  "mydomain = localdomain" \
  "mydestination = localhost" \
  "inet_interfaces = loopback-only" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8" \
  "smtpd_tls_cert_file = /etc/postfix/kim-test/server.crt" \
  "smtpd_tls_key_file = /etc/postfix/kim-test/server.key" \
  "smtpd_tls_security_level = encrypt" \
  "smtpd_tls_auth_only = yes" \
  "smtpd_tls_received_header = yes" \
  "smtp_tls_security_level = none" \
  "virtual_mailbox_domains = maidstone.example oakwood.example council.example" \
  "virtual_mailbox_base = $VMAIL" \
  "virtual_mailbox_maps = hash:/etc/postfix/vmailbox" \
  "virtual_uid_maps = static:$(id -u vmail)" \
  "virtual_gid_maps = static:$(id -g vmail)" \
  "maillog_file = /var/log/postfix.log" \
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination"
# Implicit TLS too (submissions-style wrapper mode) on 127.0.0.1:465.
postconf -M "smtps/inet=smtps inet n - n - - smtpd"
postconf -P "smtps/inet/smtpd_tls_wrappermode=yes" "smtps/inet/syslog_name=postfix/smtps"
# No chroot: a container has no /var/spool/postfix/etc copies.
postconf -F "smtp/inet/chroot = n" || true
postconf -F "smtpd/pass/chroot = n" 2>/dev/null || true
newaliases 2>/dev/null || true
postfix stop >/dev/null 2>&1 || true
postfix start >/dev/null 2>&1 || postfix reload >/dev/null
for _ in $(seq 1 50); do
  (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null && break
  sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null || fail "postfix is not listening on 127.0.0.1:25"

echo "== Postfix refuses mail without STARTTLS"
python3 - <<'EOF' || fail "postfix accepted MAIL without TLS"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", 25, timeout=10)
s.ehlo("probe")
code, _ = s.docmd("MAIL FROM:<probe@example.org>")
s.quit()
print(f"   MAIL without TLS: {code}")
sys.exit(0 if code == 530 else 1)
EOF

echo "== kim serve with mail.transport = smtp, STARTTLS, the test CA"
cat > "$WORK/schools.csv" <<'EOF'
urn,name,dsl_name,dsl_email,deputy_email,phone
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,deputy@maidstone.example,01622 111111
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,
EOF
cat > "$WORK/roll.csv" <<'EOF'
pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765
KCC-2,Philippa,Wyndham-Thorne,,2012-02-02,QX1 1AA,118766
EOF
"$KIM" --config "$WORK/kim.toml" check-config >/dev/null
"$KIM" --config "$WORK/kim.toml" schools import "$WORK/schools.csv" >/dev/null
"$KIM" --config "$WORK/kim.toml" roll import "$WORK/roll.csv" >/dev/null

KIM_LOG=info "$KIM" --config "$WORK/kim.toml" serve 2>"$WORK/kim.log" &
KIM_PID=$!
trap 'kill $KIM_PID 2>/dev/null || true' EXIT
wait_for_kim "$WORK/kim.log"
echo "   kim on $ADDR"

echo "== curl posts two notifications as Kent Police (mutual TLS)"
OCC=$(date -u -d '3 hours ago' +%Y-%m-%dT%H:%M:%SZ)
post() {
  curl --silent --show-error --fail-with-body \
    --cacert "$WORK/certs/ca.crt" \
    --cert "$WORK/certs/police-client.crt" --key "$WORK/certs/police-client.key" \
    -H 'Content-Type: application/json' --data-binary @- \
    "https://localhost:${ADDR##*:}/v1/notifications"
}
R1=$(post <<EOF | python3 -c 'import json,sys; print(json.load(sys.stdin)["receipt_id"])'
{"police_reference":"KNT/26/SYS1","incident":{"occurred_at":"$OCC","category":"domestic_abuse","summary_for_school":"Police attended a verbal argument."},
 "children":[{"given_name":"Zebediah","family_name":"Quixotic-Marsh","date_of_birth":"2013-05-17","postcode":"QX9 7ZZ","involvement":"present"},
             {"given_name":"Philippa","family_name":"Wyndham-Thorne","date_of_birth":"2012-02-02","postcode":"QX9 7ZZ","involvement":"not_present"}],
 "officer":{"name":"PC 4411 Jones","phone":"01622 000000"}}
EOF
)
echo "   receipt $R1"

echo "== waiting for both alerts in the maildirs"
for _ in $(seq 1 150); do
  n=$(find "$VMAIL" -path '*/new/*' -type f 2>/dev/null | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
M1=$(find "$VMAIL/maidstone.example/dsl/new" -type f 2>/dev/null | head -1)
M2=$(find "$VMAIL/oakwood.example/dsl/new" -type f 2>/dev/null | head -1)
[ -n "$M1" ] && [ -n "$M2" ] || { tail -20 /var/log/postfix.log || true; tail -20 "$WORK/kim.log"; fail "alerts not delivered"; }

check() { grep -q -- "$2" "$1" || fail "$(basename "$1") lacks: $2"; }
refuse() { ! grep -q -- "$2" "$1" || fail "$(basename "$1") contains: $2"; }
RID=$(echo "$R1" | tr 'A-Z' 'a-z')
# Quoted-printable soft breaks joined before looking for text.
sed -e ':a' -e '/=$/N; s/=\n//; ta' "$M1" > "$WORK/m1.txt"
sed -e ':a' -e '/=$/N; s/=\n//; ta' "$M2" > "$WORK/m2.txt"
check "$WORK/m1.txt" "Subject: Keep in mind: a notification for a pupil at Maidstone Primary"
check "$WORK/m1.txt" "Message-ID: <$RID.0@council.example>"
check "$WORK/m1.txt" "Zebediah Quixotic-Marsh"
check "$WORK/m1.txt" "17 May 2013"
check "$WORK/m1.txt" "with ESMTPS"           # Postfix's Received header: TLS was used
refuse "$WORK/m1.txt" "QX9 7ZZ"              # never the postcode (not "QX9": a random MIME boundary may hold it)
refuse "$WORK/m1.txt" "Philippa"             # never the other child
check "$WORK/m2.txt" "Message-ID: <$RID.1@council.example>"
check "$WORK/m2.txt" "Philippa Wyndham-Thorne"
refuse "$WORK/m2.txt" "Zebediah"
refuse "$WORK/m2.txt" "QX9 7ZZ"
echo "   maidstone.example/dsl and oakwood.example/dsl each got their own child only"

STATUS=$(curl --silent --fail --cacert "$WORK/certs/ca.crt" \
  --cert "$WORK/certs/police-client.crt" --key "$WORK/certs/police-client.key" \
  "https://localhost:${ADDR##*:}/v1/notifications/$R1")
echo "$STATUS" | python3 -c '
import json, sys
s = json.load(sys.stdin)
states = [c["state"] for c in s["children"]]
assert states == ["delivered", "delivered"], states
assert all(c.get("deadline_met") is True for c in s["children"]), s
print("   status:", states)
' || fail "status is not delivered"

echo "== withdrawal: the schools already told get a notice"
curl --silent --fail --cacert "$WORK/certs/ca.crt" \
  --cert "$WORK/certs/police-client.crt" --key "$WORK/certs/police-client.key" \
  -H 'Content-Type: application/json' --data '{"reason":"entered in error"}' \
  "https://localhost:${ADDR##*:}/v1/notifications/$R1/withdraw" >/dev/null || fail "withdraw"
for _ in $(seq 1 100); do
  n=$(find "$VMAIL" -path '*/new/*' -type f | wc -l)
  [ "$n" -ge 4 ] && break
  sleep 0.2
done
grep -l "have withdrawn the notification" -r "$VMAIL/maidstone.example/dsl/new" >/dev/null || fail "no withdrawal notice at maidstone"
grep -rq "entered in error" "$VMAIL" && fail "the withdrawal reason left kim"

kill -TERM $KIM_PID
wait $KIM_PID || fail "kim did not stop cleanly"
trap - EXIT
for n in Zebediah Quixotic 2013-05-17 "QX9 7ZZ" Philippa; do
  grep -q "$n" "$WORK/kim.log" && fail "the log contains $n"
  grep -rqa "$n" "$WORK/store" && fail "the store holds $n in the clear"
done
"$KIM" --config "$WORK/kim.toml" audit verify >/dev/null || fail "audit verify"

echo "== implicit TLS: tls = \"implicit\" on port 465"
sed -e 's/^port = 25$/port = 465/' -e 's/^tls = "starttls"$/tls = "implicit"/' "$WORK/kim.toml" > "$WORK/kim-implicit.toml"
grep -q 'tls = "implicit"' "$WORK/kim-implicit.toml" || fail "could not write the implicit-TLS config"
KIM_LOG=info "$KIM" --config "$WORK/kim-implicit.toml" serve 2>"$WORK/kim2.log" &
KIM_PID=$!
trap 'kill $KIM_PID 2>/dev/null || true' EXIT
ADDR=""
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/.*listening for police systems addr=\([0-9.:]*\).*/\1/p' "$WORK/kim2.log" | head -1)
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/kim2.log"; fail "kim did not start (implicit)"; }
before=$(find "$VMAIL/maidstone.example/dsl/new" -type f | wc -l)
R2=$(post <<EOF | python3 -c 'import json,sys; print(json.load(sys.stdin)["receipt_id"])'
{"police_reference":"KNT/26/SYS2","incident":{"occurred_at":"$OCC","category":"domestic_abuse"},
 "children":[{"given_name":"Zebediah","family_name":"Quixotic-Marsh","date_of_birth":"2013-05-17","involvement":"witnessed"}]}
EOF
)
for _ in $(seq 1 100); do
  n=$(find "$VMAIL/maidstone.example/dsl/new" -type f | wc -l)
  [ "$n" -gt "$before" ] && break
  sleep 0.2
done
R2ID=$(echo "$R2" | tr 'A-Z' 'a-z')
grep -rlq "Message-ID: <$R2ID.0@council.example>" "$VMAIL/maidstone.example/dsl/new" || { tail -5 /var/log/postfix.log; fail "not delivered over implicit TLS"; }
grep -q "postfix/smtps" /var/log/postfix.log || fail "postfix did not log the smtps (implicit TLS) service"
echo "   delivered over implicit TLS (port 465)"
kill -TERM $KIM_PID
wait $KIM_PID || fail "kim did not stop cleanly (implicit)"
trap - EXIT
echo "system test (postfix): ok — CA for benchmarks: $WORK/certs/ca.crt"
