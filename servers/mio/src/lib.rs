//! The mio model (in progress).
