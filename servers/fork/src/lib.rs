//! The fork model (in progress).
