//! The hybrid model (in progress).
