//! Matching children to their school, precision first (DESIGN §5): name
//! normalisation and similarity here; candidates come from the store's blind
//! indexes, never from a plaintext scan.

pub mod decide;
/// The evaluation-set generator: test and benchmark code only, compiled for
/// the unit tests and with the `evalset` feature (benches, via the
/// dev-dependency on this package); never in the daemon's build.
#[cfg(any(test, feature = "evalset"))]
pub mod evalset;
/// Name normalisation (a leaf module, [`crate::normalise`]: the store's blind
/// indexes use it too), by its older path.
pub use crate::normalise;
pub mod nearmiss;
pub mod review;
pub mod stage;
