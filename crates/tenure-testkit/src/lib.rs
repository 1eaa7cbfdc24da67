//! placeholder
pub mod etcd_server;
