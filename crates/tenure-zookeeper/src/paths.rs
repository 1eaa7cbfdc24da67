//! Where tenure's elections, candidates and keys live in the ZooKeeper
//! tree, and which children of an election node are candidates.

use tenure_core::{ElectionName, Error, Result};

use crate::layout::Layout;

/// Name of the single-key strategy's leader node inside an election's
/// node. Not a candidate in either layout.
pub(crate) const LEADER_NODE: &str = "leader";

/// What a candidate is, for the rule that an election holds one shape at
/// a time: the single-key leader node, or a queue entry of one layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Leader,
    Queue(Layout),
}

impl Shape {
    /// The shape of a child of an election node, if it names a candidate.
    pub(crate) fn of(child: &str) -> Option<Shape> {
        if child == LEADER_NODE {
            Some(Shape::Leader)
        } else if Layout::Curator.sequence(child).is_some() {
            Some(Shape::Queue(Layout::Curator))
        } else if Layout::Kazoo.sequence(child).is_some() {
            Some(Shape::Queue(Layout::Kazoo))
        } else {
            None
        }
    }

    /// As the requested shape of [`Error::ShapeConflict`].
    pub(crate) fn requested(self) -> &'static str {
        match self {
            Shape::Leader => "single-key",
            Shape::Queue(Layout::Kazoo) => "queue (kazoo layout)",
            Shape::Queue(_) => "queue (Curator layout)",
        }
    }

    /// As the existing shape of [`Error::ShapeConflict`].
    pub(crate) fn held(self) -> &'static str {
        match self {
            Shape::Leader => "single-key candidates",
            Shape::Queue(Layout::Kazoo) => "queue candidates in the kazoo layout",
            Shape::Queue(_) => "queue candidates in the Curator layout",
        }
    }
}

/// How keys crossing the trait map onto ZooKeeper paths: relative keys
/// live below the root, keys starting with `/` are absolute paths; queue
/// entries are named by the layout.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    root: String,
    layout: Layout,
}

impl Names {
    /// The names below `root` (an absolute path, `/` for the top) with
    /// candidates named by `layout`.
    pub(crate) fn new(root: String, layout: Layout) -> Names {
        Names { root, layout }
    }

    /// How queue entries are named.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// `<root>/<rel>`.
    fn join(&self, rel: &str) -> String {
        if self.root == "/" {
            format!("/{rel}")
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    /// The node of an election: `<root>/<election>`.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] if the name holds characters that
    /// ZooKeeper paths cannot.
    pub(crate) fn election_path(&self, election: &ElectionName) -> Result<String> {
        let path = self.join(election.as_str());
        validate_path(&path).map_err(|reason| Error::InvalidElectionName {
            name: election.to_string(),
            reason,
        })?;
        Ok(path)
    }

    /// The single-key strategy's leader node of an election.
    ///
    /// # Errors
    /// As [`election_path`](Names::election_path).
    pub(crate) fn leader_path(&self, election: &ElectionName) -> Result<String> {
        Ok(format!("{}/{LEADER_NODE}", self.election_path(election)?))
    }

    /// A path below the root as a key relative to it (the form keys take
    /// across the trait); paths elsewhere stay absolute.
    pub(crate) fn relative(&self, path: &str) -> String {
        let root = self.root.as_str();
        let rest = if root == "/" {
            path.strip_prefix('/')
        } else {
            path.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
        };
        match rest {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => path.to_owned(),
        }
    }

    /// A key as a path: relative keys (the normal form) under the root,
    /// absolute ones as they are.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a key that is no valid ZooKeeper path,
    /// or the root node `/` itself.
    pub(crate) fn resolve(&self, key: &str) -> Result<String> {
        let path = if key.starts_with('/') {
            key.to_owned()
        } else {
            self.join(key)
        };
        validate_path(&path).map_err(|reason| Error::InvalidConfig {
            field: "key",
            reason: format!("{key:?} is not a valid ZooKeeper path: {reason}"),
        })?;
        if path == "/" {
            return Err(Error::InvalidConfig {
                field: "key",
                reason: "the root node / cannot be an entry".into(),
            });
        }
        Ok(path)
    }

    /// Whether `path` names a queue entry (an ephemeral-sequential node of
    /// our layout).
    pub(crate) fn is_sequential(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or_default();
        self.layout.sequence(name).is_some()
    }
}

/// The parent path of an absolute path (`/` for top-level nodes).
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// ZooKeeper's path rules (as the server checks them), so that bad paths
/// fail with a clear message before any request.
pub(crate) fn validate_path(path: &str) -> std::result::Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must start with '/'");
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("must not end with '/'");
    }
    if path.len() == 1 {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err("contains an empty segment ('//')");
        }
        if segment == "." || segment == ".." {
            return Err("contains a '.' or '..' segment");
        }
    }
    let bad = |c: char| {
        let u = u32::from(c);
        [
            0x0000..=0x001f,
            0x007f..=0x009f,
            0xd800..=0xf8ff,
            0xfff0..=0xffff,
        ]
        .into_iter()
        .any(|r| r.contains(&u))
    };
    if path.chars().any(bad) {
        return Err("contains a character ZooKeeper does not allow in paths");
    }
    Ok(())
}
