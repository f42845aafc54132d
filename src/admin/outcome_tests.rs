//! Tests of `admin/outcome.rs`, kept in their own file.

use super::describe;

#[test]
fn an_error_chain_names_each_cause_once() {
    let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
    // A typed error that quotes its source, under a context.
    let e = anyhow::Error::from(crate::store::StoreError::Sled(sled::Error::Io(io())))
        .context("cannot open the store");
    let text = describe(&e);
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    assert!(
        text.starts_with("cannot open the store: the store failed"),
        "{text}"
    );
    assert_ne!(format!("{e:#}").matches("No such file").count(), 1);
    // Causes that do not repeat are all kept, in order.
    let e = anyhow::Error::from(io())
        .context("reading roll.csv")
        .context("import");
    assert_eq!(describe(&e), "import: reading roll.csv: No such file");
}
