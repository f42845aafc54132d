//! Tests of `deliver/transport.rs`, kept in their own file.

#[test]
fn replies_lose_their_addresses() {
    assert_eq!(
        super::scrub_addresses("550 5.1.1 <dsl@school.example>: Recipient address rejected"),
        "550 5.1.1 [address] Recipient address rejected"
    );
    assert_eq!(
        super::scrub_addresses("421 4.3.2 try later"),
        "421 4.3.2 try later"
    );
}
