//! Which connection a record belongs to: its socket cookie and the namespace tag of its
//! UUID (docs/netns.md). The host namespace's tag is empty, so its UUIDs keep M-Lab's
//! `<prefix>_<cookie>`; any other namespace's are `<prefix>_<tag>_<cookie>`. Keying by
//! both keeps two namespaces apart on kernels that number cookies per namespace.

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// A connection of the writer: an interned namespace tag and a socket cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnKey {
    /// Index into [`Tags`] (0: the host namespace, tag `""`).
    pub ns: u32,
    /// Socket cookie.
    pub cookie: u64,
}

/// The namespace tags seen by one writer, interned: a record carries a small id instead
/// of a string. Grows by one short string per namespace ever seen.
pub(crate) struct Tags {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Tags {
    pub fn new() -> Self {
        let mut t = Self {
            ids: FxHashMap::default(),
            names: Vec::new(),
        };
        t.id("");
        t
    }

    /// The id of `tag`, interning it on first sight.
    pub fn id(&mut self, tag: &str) -> u32 {
        if let Some(&id) = self.ids.get(tag) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(tag.into());
        self.ids.insert(tag.into(), id);
        id
    }

    /// The id of `tag` if it was ever seen.
    pub fn find(&self, tag: &str) -> Option<u32> {
        self.ids.get(tag).copied()
    }

    /// The tag of `id` (`""` for an unknown id).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
}

/// Whether `tag` is a namespace tag as the core makes them (`NamespaceInfo::uuid_tag`):
/// empty (the host), `ns<inode>` or `ns<inode>.<unix seconds>`. Nothing else reaches a
/// file name: no `/`, `_` or `..`, so a tag can neither leave the date directory nor be
/// confused with the prefix or the cookie.
pub fn valid_tag(tag: &str) -> bool {
    if tag.is_empty() {
        return true;
    }
    let Some(rest) = tag.strip_prefix("ns") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('.') {
        Some((inode, first_seen)) => digits(inode) && digits(first_seen),
        None => digits(rest),
    }
}

/// Checks the namespace tags of one batch.
///
/// # Errors
/// [`Error::Config`] naming the first bad tag.
pub fn validate_tags(tags: &[Box<str>]) -> Result<()> {
    match tags.iter().find(|t| !valid_tag(t)) {
        Some(t) => Err(Error::Config(format!(
            "uuidTags: {t:?} is not a namespace tag (ns<inode> or ns<inode>.<seconds>)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_interned_with_the_host_first() {
        let mut t = Tags::new();
        assert_eq!(t.id(""), 0);
        assert_eq!(t.id("ns4026532000"), 1);
        assert_eq!(t.id("ns4026532000"), 1);
        assert_eq!(t.find("ns1"), None);
        assert_eq!(t.name(1), "ns4026532000");
        assert_eq!(t.name(9), "");
    }

    #[test]
    fn only_plain_tags_are_valid() {
        for good in ["", "ns4026532000", "ns4026532000.1764410000"] {
            assert!(valid_tag(good), "{good}");
        }
        for bad in [
            "../x",
            "ns1/2",
            "ns_1",
            "ns",
            "ns1..2",
            "ns1.",
            "ns 1",
            "ns1\0",
            "x1",
            &format!("ns{}", "1".repeat(21)),
        ] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
        assert!(validate_tags(&["ns1".into(), "ns/1".into()]).is_err());
    }
}
