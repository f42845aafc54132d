//! Tests of `audit/actor.rs`, kept in their own file.

use super::Actor;

#[test]
fn each_kind_renders_as_stored() {
    assert_eq!(Actor::SYSTEM.as_str(), "system");
    assert_eq!(Actor::force("kent").as_str(), "force:kent");
    assert_eq!(Actor::admin(1000, Some("alice")).as_str(), "admin:alice");
    assert_eq!(Actor::admin(1234, None).as_str(), "admin:uid1234");
    assert_eq!(Actor::os_user(0).as_str(), "admin:root");
}
