//! How queue candidates are named, in the layouts of Apache Curator and
//! kazoo: [`Layout`], and the per-lease UUID that makes a name unique.

/// How queue candidates are named under an election's node, so that
/// tenure shares elections with the JVM and Python ecosystems.
///
/// Both layouts order candidates by the sequence number ZooKeeper appends
/// (`-latch-0000000007` / `__lock__0000000007`), exactly as the library
/// that defines the layout orders them; the lowest leads. Children that
/// do not match the layout (the single-key strategy's `leader` node,
/// nested elections) are not candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// Apache Curator's `LeaderLatch`: protected ephemeral-sequential
    /// children `_c_<uuid>-latch-<seq>`. The default.
    #[default]
    Curator,
    /// kazoo's `Election` (its `Lock` recipe): `<uuid hex>__lock__<seq>`,
    /// the candidate's identifier as the node's data.
    Kazoo,
}

impl Layout {
    /// The name prefix a candidate with `uuid` creates (ZooKeeper appends
    /// the sequence).
    pub(crate) fn prefix(self, uuid: &Uuid) -> String {
        match self {
            Layout::Curator => format!("_c_{}-latch-", uuid.hyphenated()),
            Layout::Kazoo => format!("{}__lock__", uuid.simple()),
        }
    }

    /// The sort key of a child name, as the layout's library computes it,
    /// or `None` when the child is not a candidate of this layout.
    ///
    /// Curator (`StandardLockInternalsDriver.fixForSorting`) takes what
    /// follows the last `latch-`; kazoo (`Lock._get_sorted_children`) what
    /// follows `__lock__`. Both compare those suffixes as strings, which
    /// for ZooKeeper's zero-padded sequences is numeric order; we also
    /// require the suffix to be a number so stray children are skipped.
    pub(crate) fn sequence(self, child: &str) -> Option<&str> {
        let seq = match self {
            Layout::Curator => {
                let i = child.rfind("latch-")?;
                &child[i + "latch-".len()..]
            }
            Layout::Kazoo => {
                let i = child.find("__lock__")?;
                &child[i + "__lock__".len()..]
            }
        };
        (!seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())).then_some(seq)
    }
}

/// A random (version 4) UUID, without a dependency for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Uuid(u128);

impl Uuid {
    pub(crate) fn new_v4() -> Uuid {
        let mut v = fastrand::u128(..);
        v &= !(0xF000u128 << 64);
        v |= 0x4000u128 << 64; // version 4
        v &= !(0xC000u128 << 48);
        v |= 0x8000u128 << 48; // RFC 4122 variant
        Uuid(v)
    }

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (Java's `UUID.toString`).
    pub(crate) fn hyphenated(&self) -> String {
        let s = self.simple();
        format!(
            "{}-{}-{}-{}-{}",
            &s[0..8],
            &s[8..12],
            &s[12..16],
            &s[16..20],
            &s[20..32]
        )
    }

    /// 32 hex digits (Python's `uuid4().hex`).
    pub(crate) fn simple(&self) -> String {
        format!("{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_name_and_order_like_their_libraries() {
        let u = Uuid::new_v4();
        let c = Layout::Curator.prefix(&u);
        assert!(c.starts_with("_c_") && c.ends_with("-latch-"), "{c}");
        assert_eq!(c.len(), "_c_".len() + 36 + "-latch-".len());
        assert_eq!(&c[3 + 14..3 + 15], "4", "version nibble: {c}");
        let k = Layout::Kazoo.prefix(&u);
        assert!(k.ends_with("__lock__") && k.len() == 32 + 8, "{k}");
        assert_eq!(
            Layout::Curator.sequence("_c_x-latch-0000000012"),
            Some("0000000012")
        );
        assert_eq!(Layout::Curator.sequence("leader"), None);
        assert_eq!(
            Layout::Kazoo.sequence("abc__lock__0000000003"),
            Some("0000000003")
        );
        assert_eq!(Layout::Kazoo.sequence("_c_x-latch-0000000012"), None);
    }
}
