//! Shared helpers for the benches (in progress).
