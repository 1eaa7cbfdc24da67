//! placeholder
pub mod conformance;
pub mod etcd_server;
pub mod zk_server;
