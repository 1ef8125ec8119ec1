//! The thread model (in progress).
