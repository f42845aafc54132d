use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

type Admitted = (Pending, oneshot::Receiver<()>);

fn admit(h: &Arc<Handshakes>, from: IpAddr) -> Admitted {
    h.admit(from, false).pending.expect("admitted")
}

fn evicted(a: &mut Admitted) -> bool {
    matches!(
        a.1.try_recv(),
        Err(oneshot::error::TryRecvError::Closed) | Ok(())
    )
}

#[test]
fn silent_connections_are_held_not_capped() {
    // Silent sockets cost a descriptor only: neither the handshake budget
    // nor the per-source cap closes them (that would start a reconnect storm).
    let h = Handshakes::new(2, 1);
    let mut all: Vec<_> = (0..50).map(|_| admit(&h, ip(1))).collect();
    assert_eq!(h.counts(), (50, 0));
    assert!(all.iter_mut().all(|a| !evicted(a)));
}

#[test]
fn a_full_handshake_budget_closes_the_oldest_handshake_for_the_newcomer() {
    let h = Handshakes::new(2, 10);
    let mut a = admit(&h, ip(1));
    let mut b = admit(&h, ip(2));
    let mut c = admit(&h, ip(3));
    assert_eq!(a.0.spoke(), Some(0));
    assert_eq!(b.0.spoke(), Some(0));
    assert_eq!(c.0.spoke(), Some(1), "the newest handshake gets its turn");
    assert!(evicted(&mut a));
    assert!(!evicted(&mut b) && !evicted(&mut c));
    assert_eq!(h.counts(), (0, 2));
    assert_eq!(a.0.spoke(), None, "an evicted one stays out");
}

#[test]
fn the_per_source_cap_closes_that_sources_oldest_handshake_only() {
    let h = Handshakes::new(100, 2);
    let mut other = admit(&h, ip(9));
    other.0.spoke();
    let mut a1 = admit(&h, ip(1));
    let mut a2 = admit(&h, ip(1));
    let mut a3 = admit(&h, ip(1));
    a1.0.spoke();
    a2.0.spoke();
    assert_eq!(a3.0.spoke(), Some(1));
    assert!(evicted(&mut a1));
    assert!(!evicted(&mut a2) && !evicted(&mut a3));
    assert!(!evicted(&mut other), "another source is left alone");
    assert_eq!(h.counts(), (0, 3));
}

#[test]
fn ipv6_sources_are_grouped_by_their_64_prefix() {
    let h = Handshakes::new(100, 1);
    let a: IpAddr = "2001:db8:1:2::10".parse::<Ipv6Addr>().unwrap().into();
    let b: IpAddr = "2001:db8:1:2::20".parse::<Ipv6Addr>().unwrap().into();
    let c: IpAddr = "2001:db8:1:3::20".parse::<Ipv6Addr>().unwrap().into();
    let mapped: IpAddr = "::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().into();
    let x = admit(&h, a);
    x.0.spoke();
    assert_eq!(admit(&h, b).0.spoke(), Some(1));
    assert_eq!(admit(&h, c).0.spoke(), Some(0));
    let y = admit(&h, ip(1));
    y.0.spoke();
    assert_eq!(admit(&h, mapped).0.spoke(), Some(1), "v4-mapped is v4");
}

#[test]
fn a_finished_handshake_leaves_the_table() {
    let h = Handshakes::new(1, 1);
    let a = admit(&h, ip(1));
    a.0.spoke();
    drop(a);
    assert_eq!(h.counts(), (0, 0));
    assert_eq!(admit(&h, ip(1)).0.spoke(), Some(0));
}

#[test]
fn over_the_descriptor_budget_the_oldest_silent_goes_or_the_newcomer_is_refused() {
    let h = Handshakes::new(100, 100);
    let refused = h.admit(ip(1), true);
    assert!(refused.pending.is_none(), "nothing to evict: refused");
    let mut talking = admit(&h, ip(1));
    talking.0.spoke();
    let mut old = admit(&h, ip(1));
    let mut young = admit(&h, ip(1));
    let n = h.admit(ip(2), true);
    assert_eq!(n.evicted, 1);
    assert!(n.pending.is_some());
    assert!(evicted(&mut old), "the oldest silent one went");
    assert!(!evicted(&mut young) && !evicted(&mut talking));
    drop(young);
    drop(n);
    // No silent one left: the oldest handshake goes.
    assert_eq!(h.admit(ip(2), true).evicted, 1);
    assert!(evicted(&mut talking));
}

#[test]
fn the_descriptor_budget_keeps_a_reserve() {
    let d = Descriptors::new(1024);
    assert_eq!(d.reserve(), 256);
    let slots: Vec<_> = (0..768).map(|_| d.try_take().expect("within")).collect();
    assert!(d.try_take().is_none());
    assert_eq!(d.open(), 768, "a refused take is not counted");
    // The first half of the reserve only for evictions still closing, the
    // second half never.
    let short: Vec<_> = (0..128).map(|_| d.take()).collect();
    assert!(short.iter().all(|(_, b)| *b == Budget::Short));
    assert_eq!(d.take().1, Budget::Spent);
    drop(short);
    drop(slots);
    assert_eq!(d.open(), 0);
    assert_eq!(Descriptors::new(40).reserve(), 16);
}

#[test]
fn summaries_log_the_first_at_once_then_count() {
    let s = Summary::default();
    assert_eq!(s.note(), Some(1));
    assert_eq!(s.note(), None);
    assert_eq!(s.note(), None);
    assert_eq!(s.flush(), None, "not yet due");
    s.state.lock().unwrap().0 = Some(Instant::now() - SUMMARY_EVERY);
    assert_eq!(s.flush(), Some(2));
    assert_eq!(s.flush(), None);
}

#[test]
fn accept_backoff_grows_to_a_second_and_resets() {
    let mut b = AcceptBackoff::default();
    assert_eq!(b.failed(), Duration::from_millis(10));
    assert_eq!(b.failed(), Duration::from_millis(20));
    for _ in 0..20 {
        b.failed();
    }
    assert_eq!(b.failed(), Duration::from_secs(1));
    b.succeeded();
    assert_eq!(b.failed(), Duration::from_millis(10));
}
