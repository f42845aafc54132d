//! Matching children to their school, precision first (DESIGN §5): name
//! normalisation and similarity here; candidates come from the store's blind
//! indexes, never from a plaintext scan.

pub mod decide;
pub mod evalset;
pub mod normalise;
pub mod stage;
