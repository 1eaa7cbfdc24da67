//! The `tenure` command-line tool, as a library so its tests and the
//! benchmark and fault-campaign tools can share its types.
