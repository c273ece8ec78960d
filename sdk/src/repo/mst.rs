//! The Merkle Search Tree of an atproto repository (the repository spec's "MST").
//!
//! Keys are repository paths (`collection/rkey`), values are record CIDs. A key's *height* is
//! the number of leading zero bits of its SHA-256, counted in 2-bit chunks (so a fanout of 4):
//! [`key_height`]. Every key sits in the node of its height; between two keys of a node, the
//! lower keys in between hang off a child pointer. A node is DAG-CBOR
//! `{l: CID|null, e: [{p, k, v, t: CID|null}]}`: `l` the subtree left of the first entry, each
//! entry the key (`k` the bytes after the `p` bytes it shares with the previous key of the
//! node), the value `v` and the subtree `t` right of it. Empty nodes appear only where a level
//! is skipped; the root is at the height of the highest key (an empty tree is one empty node).
//! The tree is unique for a set of keys, so two MSTs with the same root hold the same data.
//!
//! [`Mst`] holds a tree that may be only partly known: a *sequence* of known entries in key
//! order and, between them, subtrees known only by CID. Operations load the blocks they need
//! from a [`Blocks`] map and fail with [`RepoError::MissingBlock`] when one is not there; that
//! is how a `#commit` event's operations are proven with the few blocks the event carries
//! (see [`super::verify`]). [`walk`] reads a whole tree in key order.

use atlex_types::{Bytes, CidLink};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::car::Blocks;
use super::error::RepoError;

/// Encoded MST nodes: `(CID, DAG-CBOR bytes)`.
pub type Nodes = Vec<(CidLink, Vec<u8>)>;

/// The longest key accepted, in bytes (repository paths are far shorter).
pub const MAX_KEY_LEN: usize = 1024;

/// A key's height in the MST: the leading zero bits of its SHA-256, divided by 2.
pub fn key_height(key: &[u8]) -> u8 {
    let digest = Sha256::digest(key);
    let mut zeros = 0u32;
    for byte in digest {
        zeros += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    // At most 256 zero bits: the height is at most 128.
    (zeros / 2) as u8
}

/// The number of leading bytes `a` and `b` share.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeData {
    e: Vec<EntryData>,
    l: Option<CidLink>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryData {
    k: Bytes,
    p: u64,
    t: Option<CidLink>,
    v: CidLink,
}

/// One item of a partly known tree, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A key and its value.
    Leaf {
        key: String,
        value: CidLink,
        height: u8,
    },
    /// A subtree known only by its CID, whose node is at `level`.
    Sub { cid: CidLink, level: u8 },
}

/// Decodes the node `cid` into its items in key order. `level` is the level the parent puts
/// it at (`None` for the root, whose level is its first key's height).
fn node_items(cid: &CidLink, level: Option<u8>, blocks: &Blocks) -> Result<Vec<Item>, RepoError> {
    let what = match level {
        None => "the MST root",
        Some(_) => "an MST node",
    };
    let bytes = blocks
        .get(cid)
        .ok_or_else(|| RepoError::missing(cid, what))?;
    let node: NodeData = serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| RepoError::bad_block(cid, format!("not an MST node: {e}")))?;
    let invalid = |reason: String| RepoError::InvalidMst(format!("node {cid}: {reason}"));
    let level = match (level, node.e.first()) {
        (Some(level), _) => level,
        (None, Some(first)) => {
            if first.p != 0 {
                return Err(invalid("the first entry has a prefix".into()));
            }
            key_height(&first.k)
        }
        (None, None) => {
            if node.l.is_some() {
                return Err(invalid("the root has no entries but a subtree".into()));
            }
            return Ok(Vec::new());
        }
    };
    if node.e.is_empty() && node.l.is_none() {
        return Err(invalid("an empty node inside the tree".into()));
    }
    let child = |cid: Option<CidLink>| -> Result<Option<Item>, RepoError> {
        match (cid, level.checked_sub(1)) {
            (None, _) => Ok(None),
            (Some(cid), Some(level)) => Ok(Some(Item::Sub { cid, level })),
            (Some(_), None) => Err(invalid("a node of height 0 has a subtree".into())),
        }
    };
    let mut items = Vec::with_capacity(node.e.len() * 2 + 1);
    items.extend(child(node.l)?);
    let mut previous: Vec<u8> = Vec::new();
    for (index, entry) in node.e.into_iter().enumerate() {
        let prefix = usize::try_from(entry.p).unwrap_or(usize::MAX);
        if prefix > previous.len() || (index == 0 && prefix != 0) {
            return Err(invalid(format!(
                "entry {index} has a prefix of {} bytes, longer than the previous key",
                entry.p
            )));
        }
        if prefix.saturating_add(entry.k.len()) > MAX_KEY_LEN {
            return Err(invalid(format!(
                "entry {index}: key longer than {MAX_KEY_LEN} bytes"
            )));
        }
        let mut key = previous[..prefix].to_vec();
        key.extend_from_slice(&entry.k);
        if index > 0 && key <= previous {
            return Err(invalid(format!("entry {index}: keys out of order")));
        }
        let height = key_height(&key);
        if height != level {
            return Err(invalid(format!(
                "entry {index}: a key of height {height} in a node of height {level}"
            )));
        }
        let text = String::from_utf8(key.clone())
            .map_err(|_| invalid(format!("entry {index}: the key is not UTF-8")))?;
        items.push(Item::Leaf {
            key: text,
            value: entry.v,
            height,
        });
        items.extend(child(entry.t)?);
        previous = key;
    }
    Ok(items)
}

/// Encodes a node and adds it to `out`; returns its CID.
fn write_node(
    left: Option<CidLink>,
    entries: Vec<(&str, &CidLink, Option<CidLink>)>,
    out: &mut Nodes,
) -> Result<CidLink, RepoError> {
    let mut previous: &[u8] = &[];
    let mut e = Vec::with_capacity(entries.len());
    for (key, value, right) in entries {
        let key = key.as_bytes();
        let prefix = common_prefix_len(previous, key);
        e.push(EntryData {
            k: Bytes::new(key[prefix..].to_vec()),
            p: prefix as u64,
            t: right,
            v: value.clone(),
        });
        previous = key;
    }
    let bytes = serde_ipld_dagcbor::to_vec(&NodeData { e, l: left })
        .map_err(|e| RepoError::InvalidMst(format!("cannot encode a node: {e}")))?;
    let cid = CidLink::for_dag_cbor(&bytes);
    out.push((cid.clone(), bytes));
    Ok(cid)
}

enum Build {
    /// The subtree at this index has to be loaded first.
    Expand(usize),
    Failed(RepoError),
}

impl From<RepoError> for Build {
    fn from(error: RepoError) -> Build {
        Build::Failed(error)
    }
}

/// A repository's MST, possibly only partly loaded (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mst {
    items: Vec<Item>,
}

impl Mst {
    /// An empty tree.
    pub fn new() -> Mst {
        Mst::default()
    }

    /// The tree whose root node is `root`; only the root is read now, the rest on demand.
    pub fn load(root: &CidLink, blocks: &Blocks) -> Result<Mst, RepoError> {
        Ok(Mst {
            items: node_items(root, None, blocks)?,
        })
    }

    /// Reads a whole tree from `blocks` (every node must be there).
    pub fn load_all(root: &CidLink, blocks: &Blocks) -> Result<Mst, RepoError> {
        let mut items = Vec::new();
        for entry in walk(root, blocks) {
            let (key, value) = entry?;
            let height = key_height(key.as_bytes());
            items.push(Item::Leaf { key, value, height });
        }
        Ok(Mst { items })
    }

    /// The known entries, in key order (all of them after [`Mst::load_all`]).
    pub fn known_entries(&self) -> impl Iterator<Item = (&str, &CidLink)> {
        self.items.iter().filter_map(|item| match item {
            Item::Leaf { key, value, .. } => Some((key.as_str(), value)),
            Item::Sub { .. } => None,
        })
    }

    /// Replaces the subtree at `index` by its node's items.
    fn expand(&mut self, index: usize, blocks: &Blocks) -> Result<(), RepoError> {
        let Some(Item::Sub { cid, level }) = self.items.get(index).cloned() else {
            return Err(RepoError::InvalidMst("internal: not a subtree".into()));
        };
        let inner = node_items(&cid, Some(level), blocks)?;
        let before = self.items[..index].iter().rev().find_map(leaf_key);
        let after = self.items[index + 1..].iter().find_map(leaf_key);
        let mut keys = inner.iter().filter_map(leaf_key);
        let first = keys.next();
        let last = keys.next_back().or(first);
        let out_of_place = match (first, last) {
            (Some(first), Some(last)) => {
                before.is_some_and(|before| first <= before)
                    || after.is_some_and(|after| last >= after)
            }
            _ => false,
        };
        if out_of_place {
            return Err(RepoError::InvalidMst(format!(
                "node {cid} holds keys outside the range its position allows"
            )));
        }
        self.items.splice(index..=index, inner);
        Ok(())
    }

    /// Finds `key`: `Ok(index)` of its entry, or `Err(index)` where it would be inserted,
    /// loading the subtrees on the way.
    fn locate(&mut self, key: &str, blocks: &Blocks) -> Result<Result<usize, usize>, RepoError> {
        loop {
            let mut gap_start = 0;
            let mut found = None;
            for (index, item) in self.items.iter().enumerate() {
                if let Item::Leaf { key: k, .. } = item {
                    match k.as_str().cmp(key) {
                        std::cmp::Ordering::Less => gap_start = index + 1,
                        std::cmp::Ordering::Equal => return Ok(Ok(index)),
                        std::cmp::Ordering::Greater => {
                            found = Some(index);
                            break;
                        }
                    }
                }
            }
            let gap_end = found.unwrap_or(self.items.len());
            let sub = (gap_start..gap_end)
                .find(|&index| matches!(self.items.get(index), Some(Item::Sub { .. })));
            match sub {
                Some(index) => self.expand(index, blocks)?,
                None => return Ok(Err(gap_end)),
            }
        }
    }

    /// The value of `key`, loading what is needed from `blocks`.
    pub fn get(&mut self, key: &str, blocks: &Blocks) -> Result<Option<CidLink>, RepoError> {
        Ok(match self.locate(key, blocks)? {
            Ok(index) => match self.items.get(index) {
                Some(Item::Leaf { value, .. }) => Some(value.clone()),
                _ => None,
            },
            Err(_) => None,
        })
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(
        &mut self,
        key: &str,
        value: CidLink,
        blocks: &Blocks,
    ) -> Result<Option<CidLink>, RepoError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(RepoError::InvalidMst(format!(
                "a key must be 1 to {MAX_KEY_LEN} bytes, not {}",
                key.len()
            )));
        }
        match self.locate(key, blocks)? {
            Ok(index) => match self.items.get_mut(index) {
                Some(Item::Leaf { value: old, .. }) => Ok(Some(std::mem::replace(old, value))),
                _ => Err(RepoError::InvalidMst("internal: not an entry".into())),
            },
            Err(index) => {
                let height = key_height(key.as_bytes());
                self.items.insert(
                    index,
                    Item::Leaf {
                        key: key.to_owned(),
                        value,
                        height,
                    },
                );
                Ok(None)
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str, blocks: &Blocks) -> Result<Option<CidLink>, RepoError> {
        match self.locate(key, blocks)? {
            Ok(index) => match self.items.remove(index) {
                Item::Leaf { value, .. } => Ok(Some(value)),
                Item::Sub { .. } => Err(RepoError::InvalidMst("internal: not an entry".into())),
            },
            Err(_) => Ok(None),
        }
    }

    /// The root CID of the tree as it is now, loading the subtrees whose shape changed.
    pub fn root(&mut self, blocks: &Blocks) -> Result<CidLink, RepoError> {
        self.root_and_nodes(blocks).map(|(root, _)| root)
    }

    /// The root CID and the encoded nodes that are not known only by CID (the root, and every
    /// node on the way to a change): what a commit adds to the repository's blocks.
    pub fn root_and_nodes(&mut self, blocks: &Blocks) -> Result<(CidLink, Nodes), RepoError> {
        loop {
            let mut out = Vec::new();
            match self.build(&mut out) {
                Ok(root) => return Ok((root, out)),
                Err(Build::Expand(index)) => self.expand(index, blocks)?,
                Err(Build::Failed(error)) => return Err(error),
            }
        }
    }

    fn build(&self, out: &mut Nodes) -> Result<CidLink, Build> {
        let top = self
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Leaf { height, .. } => Some(*height),
                Item::Sub { .. } => None,
            })
            .max();
        match top {
            Some(top) => self.build_node(0, self.items.len(), top, out),
            None => match self
                .items
                .iter()
                .position(|i| matches!(i, Item::Sub { .. }))
            {
                // Only subtrees left: what is in them decides the root.
                Some(index) => Err(Build::Expand(index)),
                None => Ok(write_node(None, Vec::new(), out)?),
            },
        }
    }

    /// Builds the node at `level` from `items[start..end]`.
    fn build_node(
        &self,
        start: usize,
        end: usize,
        level: u8,
        out: &mut Nodes,
    ) -> Result<CidLink, Build> {
        let mut left = None;
        let mut entries: Vec<(&str, &CidLink, Option<CidLink>)> = Vec::new();
        let mut group_start = start;
        for index in start..end {
            if let Some(Item::Leaf { key, value, height }) = self.items.get(index)
                && *height == level
            {
                let child = self.build_child(group_start, index, level, out)?;
                match entries.last_mut() {
                    Some(last) => last.2 = child,
                    None => left = child,
                }
                entries.push((key, value, None));
                group_start = index + 1;
            }
        }
        let child = self.build_child(group_start, end, level, out)?;
        match entries.last_mut() {
            Some(last) => last.2 = child,
            None => left = child,
        }
        Ok(write_node(left, entries, out)?)
    }

    /// The subtree below a node at `level` holding `items[start..end]`.
    fn build_child(
        &self,
        start: usize,
        end: usize,
        level: u8,
        out: &mut Nodes,
    ) -> Result<Option<CidLink>, Build> {
        if start >= end {
            return Ok(None);
        }
        let group = &self.items[start..end];
        let Some(below) = level.checked_sub(1) else {
            // Under a node of height 0 only a subtree can be left over: load it.
            return Err(Build::Expand(start));
        };
        if let [Item::Sub { cid, level: l }] = group
            && *l == below
        {
            return Ok(Some(cid.clone()));
        }
        if let Some(offset) = group
            .iter()
            .position(|item| matches!(item, Item::Sub { level: l, .. } if *l >= below))
        {
            return Err(Build::Expand(start + offset));
        }
        self.build_node(start, end, below, out).map(Some)
    }
}

fn leaf_key(item: &Item) -> Option<&str> {
    match item {
        Item::Leaf { key, .. } => Some(key),
        Item::Sub { .. } => None,
    }
}

/// Walks the whole tree under `root` in key order, yielding `(key, value)`; a missing or
/// invalid node ends the walk with its error.
pub fn walk<'a>(root: &CidLink, blocks: &'a Blocks) -> Walk<'a> {
    Walk {
        blocks,
        stack: Vec::new(),
        root: Some(root.clone()),
        last: None,
        failed: false,
    }
}

/// The iterator of [`walk`].
#[derive(Debug)]
pub struct Walk<'a> {
    blocks: &'a Blocks,
    /// Items still to visit, the next one last.
    stack: Vec<Item>,
    root: Option<CidLink>,
    last: Option<String>,
    failed: bool,
}

impl Iterator for Walk<'_> {
    type Item = Result<(String, CidLink), RepoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(root) = self.root.take() {
            match node_items(&root, None, self.blocks) {
                Ok(items) => self.stack.extend(items.into_iter().rev()),
                Err(error) => return self.fail(error),
            }
        }
        loop {
            match self.stack.pop()? {
                Item::Leaf { key, value, .. } => {
                    if self.last.as_ref().is_some_and(|last| *last >= key) {
                        return self
                            .fail(RepoError::InvalidMst(format!("key {key:?} out of order")));
                    }
                    self.last = Some(key.clone());
                    return Some(Ok((key, value)));
                }
                Item::Sub { cid, level } => match node_items(&cid, Some(level), self.blocks) {
                    Ok(items) => self.stack.extend(items.into_iter().rev()),
                    Err(error) => return self.fail(error),
                },
            }
        }
    }
}

impl Walk<'_> {
    fn fail(&mut self, error: RepoError) -> Option<Result<(String, CidLink), RepoError>> {
        self.failed = true;
        Some(Err(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> CidLink {
        CidLink::parse("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454").unwrap()
    }

    #[test]
    fn heights() {
        assert_eq!(key_height(b""), 0);
        assert_eq!(key_height(b"blue"), 1);
        assert_eq!(key_height(b"2a92d355"), 4);
        assert_eq!(key_height(b"app.bsky.feed.post/9adeb165882c"), 8);
    }

    #[test]
    fn empty_tree_root() {
        let mut mst = Mst::new();
        let root = mst.root(&Blocks::new()).unwrap();
        assert_eq!(
            root.to_string(),
            "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
        );
    }

    #[test]
    fn insert_load_round_trip() {
        let keys = [
            "A0/374913",
            "B1/986427",
            "C0/451630",
            "E0/670489",
            "F1/085263",
        ];
        let mut mst = Mst::new();
        let none = Blocks::new();
        for key in keys {
            mst.insert(key, leaf(), &none).unwrap();
        }
        let (root, nodes) = mst.root_and_nodes(&none).unwrap();
        let mut blocks = Blocks::new();
        for (_, bytes) in nodes {
            blocks.insert_dag_cbor(bytes);
        }
        let walked: Vec<String> = walk(&root, &blocks).map(|e| e.unwrap().0).collect();
        assert_eq!(walked, keys);
        let mut lazy = Mst::load(&root, &blocks).unwrap();
        assert_eq!(lazy.get("C0/451630", &blocks).unwrap(), Some(leaf()));
        assert_eq!(lazy.get("D0/000000", &blocks).unwrap(), None);
        assert_eq!(lazy.root(&blocks).unwrap(), root);
        // With only the root, finding a key inside a subtree is a missing block.
        let mut only_root = Blocks::new();
        only_root.insert_dag_cbor(blocks.get(&root).unwrap().clone());
        let mut partial = Mst::load(&root, &only_root).unwrap();
        assert_eq!(partial.root(&only_root).unwrap(), root);
    }
}
