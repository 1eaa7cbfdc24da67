//! etcd v3 backend for tenure (under construction).
