//! Tests of `hardening.rs`, kept in their own file.

#[test]
fn after_the_call_the_process_is_not_dumpable() {
    super::no_core_dumps().unwrap();
    assert!(!super::is_dumpable().unwrap());
    super::no_core_dumps().unwrap();
}
