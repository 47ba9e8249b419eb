//! [`GenericObject`]: a group's contents loaded without knowing its Rust type.
//!
//! Used for groups whose type tag is not in the schema, and by the `h5pom` inspector. Prefixed
//! families are reassembled: `x-count` with `x-0`, `x-1`, … becomes the list `x`; other
//! `x-<key>` names become the dict `x`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hdf5::Group;

use crate::array::{ArrayInfo, info};
use crate::attr::{At, TYPE_SUFFIX};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object::{self as ffi, Token};
use crate::name::{MAX_LIST_LEN, RESERVED_PREFIX, is_valid_key, item_name, join};
use crate::object::{TAG_ATTR, read_tag};
use crate::stack::{MAX_DEPTH, StackBase};
use crate::value::Value;

/// The contents of one group, untyped.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GenericObject {
    /// Path in the file.
    pub path: String,
    /// The `loader-key`, if any.
    pub tag: Option<String>,
    /// Plain scalar attributes.
    pub attrs: BTreeMap<String, Value>,
    /// Scalar lists (`x-count`, `x-0`, …).
    pub lists: BTreeMap<String, Vec<Value>>,
    /// Scalar dicts (`x-<key>` attributes).
    pub dicts: BTreeMap<String, BTreeMap<String, Value>>,
    /// Datasets, described by dtype and shape (values are not read).
    pub arrays: BTreeMap<String, ArrayInfo>,
    /// Sub-objects by link name.
    pub children: BTreeMap<String, Child>,
    /// Object lists (`x-count` attribute with sub-groups `x-0`, …).
    pub object_lists: BTreeMap<String, Vec<Child>>,
    /// Object dicts (`x-<key>` sub-groups).
    pub object_dicts: BTreeMap<String, BTreeMap<String, Child>>,
}

/// A sub-group of a [`GenericObject`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Child {
    /// First time this group is reached: its contents.
    Object(Box<GenericObject>),
    /// A hard link to a group already reached (a shared reference or a cycle) at `path`.
    Link {
        /// Where the object was first reached.
        path: String,
    },
    /// Something that is neither a group nor a dataset (dangling or external link, datatype).
    Other {
        /// A description.
        what: String,
    },
}

struct Walk {
    seen: HashMap<Token, String>,
    stack: StackBase,
}

impl GenericObject {
    /// Loads `group` and everything below it. Shared sub-groups appear once, then as
    /// [`Child::Link`]; cycles end there too.
    pub fn load(group: &Group, path: &str) -> Result<Self> {
        Walk::starting_at(group, path).object(group, path, 0, false)
    }

    /// Loads `group` as a folder (the root, or a group made by
    /// [`Folder::create_folder`](crate::Folder::create_folder)): its own entries are taken by
    /// name, without reassembling prefixed families (`x-count`, `x-0`, `x-<key>`), since a
    /// folder's entries are object names, not fields. Everything below is loaded as by
    /// [`load`](Self::load).
    pub fn load_folder(group: &Group, path: &str) -> Result<Self> {
        Walk::starting_at(group, path).object(group, path, 0, true)
    }
}

impl Walk {
    /// A walk that has seen `group` (so links back to it, cycles, end there).
    fn starting_at(group: &Group, path: &str) -> Self {
        let mut seen = HashMap::new();
        if let Ok(t) = ffi::token(group) {
            seen.insert(t, path.to_owned());
        }
        Walk {
            seen,
            stack: StackBase::new(),
        }
    }

    fn child(
        &mut self,
        parent: &Group,
        parent_path: &str,
        name: &str,
        depth: usize,
    ) -> Result<Child> {
        let path = join(parent_path, name);
        let Ok(g) = parent.group(name) else {
            return Ok(Child::Other {
                what: "not a group".into(),
            });
        };
        let token = ffi::token(&g).ctx("read object token", || path.clone())?;
        if let Some(first) = self.seen.get(&token) {
            return Ok(Child::Link {
                path: first.clone(),
            });
        }
        self.seen.insert(token, path.clone());
        Ok(Child::Object(Box::new(self.object(
            &g,
            &path,
            depth + 1,
            false,
        )?)))
    }

    /// Loads one group; `folder` takes its entries by name instead of reassembling families.
    fn object(
        &mut self,
        g: &Group,
        path: &str,
        depth: usize,
        folder: bool,
    ) -> Result<GenericObject> {
        if depth > MAX_DEPTH {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                reason: format!("groups nested deeper than {MAX_DEPTH}"),
            });
        }
        self.stack.check(path, depth)?;
        let at = At::new(g, path);
        let mut out = GenericObject {
            path: path.to_owned(),
            tag: read_tag(g, path).unwrap_or(None),
            ..Default::default()
        };
        let attr_names: BTreeSet<String> = g
            .attr_names()
            .ctx("list attributes", || path.to_owned())?
            .into_iter()
            .filter(|n| n != TAG_ATTR && !n.starts_with(RESERVED_PREFIX))
            .collect();
        let mut groups = BTreeSet::new();
        for name in g.member_names().ctx("list members", || path.to_owned())? {
            match g.loc_type_by_name(&name) {
                Ok(hdf5::LocationType::Dataset) => {
                    if let Ok(ds) = g.dataset(&name) {
                        out.arrays
                            .insert(name.clone(), info(&ds, &join(path, &name))?);
                    }
                }
                Ok(hdf5::LocationType::Group) => {
                    groups.insert(name);
                }
                _ => {
                    out.children.insert(
                        name,
                        Child::Other {
                            what: "dangling, external or non-group link".into(),
                        },
                    );
                }
            }
        }
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut used_groups: BTreeSet<String> = BTreeSet::new();
        // Lists: `x-count` plus items.
        for cname in attr_names
            .iter()
            .filter(|n| !folder && n.ends_with("-count"))
        {
            let base = &cname[..cname.len() - "-count".len()];
            if !is_valid_key(base) {
                continue;
            }
            let n = match at.read_value(cname)?.and_then(|v| v.as_i128()) {
                Some(n) if (0..=MAX_LIST_LEN as i128).contains(&n) => n as usize,
                _ => continue,
            };
            used.insert(cname.clone());
            if groups.contains(&item_name(base, 0)) {
                let mut items = Vec::with_capacity(n.min(1024));
                for i in 0..n {
                    let item = item_name(base, i);
                    used_groups.insert(item.clone());
                    items.push(if groups.contains(&item) {
                        self.child(g, path, &item, depth)?
                    } else {
                        Child::Other {
                            what: "missing list item".into(),
                        }
                    });
                }
                out.object_lists.insert(base.to_owned(), items);
            } else {
                let mut items = Vec::with_capacity(n.min(1024));
                for i in 0..n {
                    let item = item_name(base, i);
                    used.insert(item.clone());
                    used.insert(format!("{item}{TYPE_SUFFIX}"));
                    items.push(
                        at.read_value(&item)?
                            .unwrap_or_else(|| Value::Unsupported("missing list item".into())),
                    );
                }
                out.lists.insert(base.to_owned(), items);
            }
        }
        // Plain attributes and scalar dicts.
        for name in &attr_names {
            if used.contains(name) {
                continue;
            }
            if let Some(base) = name.strip_suffix(TYPE_SUFFIX)
                && attr_names.contains(base)
            {
                continue; // the marker of `base`
            }
            let value = match at.read_value(name) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => Value::Unsupported(format!("unreadable: {e}")),
            };
            match name.split_once('-').filter(|_| !folder) {
                Some((base, key)) if is_valid_key(base) && is_valid_key(key) => {
                    out.dicts
                        .entry(base.to_owned())
                        .or_default()
                        .insert(key.to_owned(), value);
                }
                _ => {
                    out.attrs.insert(name.clone(), value);
                }
            }
        }
        // Sub-groups: object dicts and plain children.
        for name in &groups {
            if used_groups.contains(name) {
                continue;
            }
            let child = self.child(g, path, name, depth)?;
            match name.split_once('-').filter(|_| !folder) {
                Some((base, key)) if is_valid_key(base) && is_valid_key(key) => {
                    out.object_dicts
                        .entry(base.to_owned())
                        .or_default()
                        .insert(key.to_owned(), child);
                }
                _ => {
                    out.children.insert(name.clone(), child);
                }
            }
        }
        Ok(out)
    }
}
