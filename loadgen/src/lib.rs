//! loadgen (in progress).
