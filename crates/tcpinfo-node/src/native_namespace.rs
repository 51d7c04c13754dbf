//! `NativeNamespace`: one entry of a batch's network-namespace table.

use napi_derive::napi;

/// A network namespace that records of a batch point into.
#[napi(object, object_from_js = false)]
pub struct NativeNamespace {
    /// Namespace inode (`net:[INODE]`); nsfs inodes are 32-bit, exact as a JS number.
    pub inode: f64,
    /// The `/run/netns` name, else a container id, else `null`.
    pub name: Option<String>,
    /// The namespace tcpinfo runs in (or the one it was given): M-Lab UUIDs.
    pub host: bool,
    /// Between the prefix and the cookie in this namespace's UUIDs; empty for the host.
    pub uuid_tag: String,
}

impl From<tcpinfo_core::NamespaceInfo> for NativeNamespace {
    #[expect(clippy::cast_precision_loss, reason = "namespace inodes are 32-bit")]
    fn from(n: tcpinfo_core::NamespaceInfo) -> Self {
        Self {
            inode: n.inode as f64,
            name: n.name,
            host: n.host,
            uuid_tag: n.uuid_tag,
        }
    }
}
