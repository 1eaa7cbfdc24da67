//! ZooKeeper backend for tenure (under construction).
