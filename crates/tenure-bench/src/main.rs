//! tenure's benchmark suite.

fn main() {}
