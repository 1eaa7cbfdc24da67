//! placeholder
pub mod etcd_server;
pub mod zk_server;
