//! tenure: leader election with pluggable coordination backends.
pub use tenure_core::*;
#[cfg(feature = "memory")]
pub use tenure_memory as memory;
