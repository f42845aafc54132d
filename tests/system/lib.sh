# Shared by the system tests (sourced): start the real kim and learn its address.

# wait_for_kim LOG: sets ADDR to the police listener's address from kim's log
# (`listening for police systems addr=…`), or prints the log and fails.
wait_for_kim() {
  ADDR=""
  for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/.*listening for police systems addr=\([0-9.:]*\).*/\1/p' "$1" | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  cat "$1"
  fail "kim did not start"
}
