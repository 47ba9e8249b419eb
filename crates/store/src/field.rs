//! [`Field`]: how each kind of Rust field maps onto a group's attributes, datasets and links.

use std::collections::BTreeMap;

use ndarray::{Array, Dimension};

use crate::array::{self, LazyArray};
use crate::attr::{TYPE_SUFFIX, scalar_error};
use crate::ctx::{LoadCtx, SaveCtx};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::name::{MAX_LIST_LEN, count_name, is_valid_key, item_name, join};
use crate::object::{Object, Shared};
use crate::pipeline::Element;
use crate::scalar::Scalar;

/// A field of an [`Object`]: knows how to write itself under a name in a group and read back.
///
/// | Rust type | HDF5 |
/// |---|---|
/// | [`Scalar`] (`i32`, `String`, `Option<f64>`, `NaiveDate`, …) | attribute `name` |
/// | `ndarray::Array<T, D>`, [`LazyArray<T, D>`] | dataset `name` |
/// | [`Shared<O>`], `Option<Shared<O>>` | sub-group `name` (or a hard link to it) |
/// | `Vec<S>` of scalars | attributes `name-count`, `name-0`, `name-1`, … |
/// | `Vec<Shared<O>>` | attribute `name-count`, sub-groups `name-0`, … |
/// | `BTreeMap<String, S>` | attributes `name-<key>` |
/// | `BTreeMap<String, Shared<O>>` | sub-groups `name-<key>` |
/// | `[T; N]` of [`ArrayItem`](crate::ArrayItem)s (numbers, `bool`), glam vectors (feature `glam`) | one 1-D attribute `name` of `N` elements (a [`Scalar`]) |
/// | `#[derive(Field)]` struct | its fields under `name.<inner>` |
/// | `#[derive(Field)]` enum | unit variants: string attribute `name` (a [`Scalar`]); with data: `name` plus `name.<field>` |
///
/// `#[derive(Object)]` also stores entity handles (`Entity`, `Option`, `Vec`, `[_; N]`,
/// `BTreeMap`/`HashMap<String, _>` of them) as persistent ids through
/// [`SaveCtx::save_ref`] and its siblings, and `#[h5pom(dataset)] Vec<T>` through
/// [`SaveCtx::save_vec_dataset`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported h5pom field type",
    label = "this field's type is not stored by h5pom",
    note = "supported: numbers, bool, String, chrono dates, Option of these; `[T; N]` of numbers or bool; \
            ndarray arrays and LazyArray; Shared<O> and Option<Shared<O>>; Vec, BTreeMap<String, _> of \
            these; types with #[derive(h5pom::Field)] (nested structs, enums); glam vectors (feature \
            `glam`); `Entity` and Vec/[_; N]/maps of it",
    note = "or mark the field #[h5pom(skip)]"
)]
pub trait Field: Sized {
    /// True if the field can be one column of a table row (scalars; the default is false, so
    /// that a new kind is refused by `Registry::table` rather than failing at a flush).
    const COLUMNAR: bool = false;
    /// Writes the value under `name`.
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()>;
    /// Reads the value stored under `name`; `Ok(None)` if the file has nothing there.
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>>;
    /// True if writing `self` where `other` is stored would change nothing.
    fn same(&self, other: &Self) -> bool;
    /// The value of a field absent from the file, if the type has a natural one.
    fn if_missing() -> Option<Self> {
        None
    }
}

impl<S: Scalar> Field for S {
    const COLUMNAR: bool = S::COLUMNAR;
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        cx.put_value(name, self.to_value())
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        match cx.get_value(name)? {
            None => Ok(None),
            Some(v) => S::from_value(v)
                .map(Some)
                .map_err(|e| scalar_error(&cx.path, name, e)),
        }
    }
    fn same(&self, other: &Self) -> bool {
        Scalar::same(self, other)
    }
    fn if_missing() -> Option<Self> {
        S::if_missing()
    }
}

impl<T: Element, D: Dimension> Field for Array<T, D> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        cx.save_array(name, self.view())
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        if let Some((g, path, sample)) = cx.frames() {
            return crate::series::read_frame(g, path, name, sample);
        }
        open_dataset(cx, name)?
            .map(|ds| array::read(cx.file(), &ds, &cx.path, name))
            .transpose()
    }
    fn same(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.iter().zip(other.iter()).all(|(a, b)| a.same(b))
    }
}

fn open_dataset(cx: &LoadCtx<'_>, name: &str) -> Result<Option<hdf5::Dataset>> {
    if !cx.link_exists(name)? {
        return Ok(None);
    }
    cx.grp(name)?
        .dataset(name)
        .map(Some)
        .map_err(|_| Error::TypeMismatch {
            path: cx.path.clone(),
            field: name.to_owned(),
            expected: "dataset".into(),
            found: "a link that is not a dataset".into(),
        })
}

impl<T: Element, D: Dimension> Field for LazyArray<T, D> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        if let Some((path, field, ds)) = self.source_location() {
            let same_file = ds.filename() == cx.grp(name)?.filename();
            if same_file && path == cx.path && field == name {
                return Ok(()); // unread and unmodified, saved where it came from
            }
        }
        cx.save_array(name, self.get()?.view())
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        if let Some((g, path, sample)) = cx.frames() {
            return Ok(crate::series::read_frame(g, path, name, sample)?.map(LazyArray::new));
        }
        open_dataset(cx, name)?
            .map(|ds| LazyArray::from_dataset(ds, &cx.path, name))
            .transpose()
    }
    fn same(&self, other: &Self) -> bool {
        match (self.source_location(), other.source_location()) {
            (Some((p1, f1, _)), Some((p2, f2, _))) => p1 == p2 && f1 == f2,
            _ => match (self.get(), other.get()) {
                (Ok(a), Ok(b)) => {
                    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x.same(y))
                }
                _ => false,
            },
        }
    }
}

impl<O: Object> Field for Shared<O> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        cx.save_shared(name, self)
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        cx.load_shared(name)
    }
    /// Always false: the referenced object may have changed through another clone, so it is
    /// always written (once per save call).
    fn same(&self, _other: &Self) -> bool {
        false
    }
}

impl<O: Object> Field for Option<Shared<O>> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        match self {
            Some(s) => cx.save_shared(name, s),
            None if cx.link_exists(name)? => cx.unlink(name),
            None => Ok(()),
        }
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        Ok(Some(cx.load_shared(name)?))
    }
    fn same(&self, other: &Self) -> bool {
        self.is_none() && other.is_none()
    }
    fn if_missing() -> Option<Self> {
        Some(None)
    }
}

pub(crate) fn read_count(at: &crate::attr::At<'_>, name: &str) -> Result<Option<usize>> {
    let cname = count_name(name);
    let Some(v) = at.read_value(&cname)? else {
        return Ok(None);
    };
    match v.as_i128() {
        Some(n) if (0..=MAX_LIST_LEN as i128).contains(&n) => Ok(Some(n as usize)),
        _ => Err(Error::Corrupt {
            path: format!("{}@{cname}", at.path),
            reason: format!("list count is {v}"),
        }),
    }
}

pub(crate) fn write_count(at: &crate::attr::At<'_>, name: &str, n: usize) -> Result<()> {
    at.write_value(&count_name(name), &crate::Value::I64(n as i64))
}

/// Writes `values` as the list family of `name` (`name-count`, `name-0`, …), dropping items
/// of a longer list stored before.
pub(crate) fn save_list(
    cx: &SaveCtx<'_, '_>,
    name: &str,
    values: impl ExactSizeIterator<Item = crate::Value>,
) -> Result<()> {
    let at = cx.at(name)?;
    let old = read_count(&at, name).unwrap_or(None).unwrap_or(0);
    let n = values.len();
    for (i, v) in values.enumerate() {
        at.write_value(&item_name(name, i), &v)?;
    }
    for i in n..old {
        let item = item_name(name, i);
        at.delete(&item)?;
        at.delete(&format!("{item}{TYPE_SUFFIX}"))?;
    }
    write_count(&at, name, n)
}

impl<S: Scalar> Field for Vec<S> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        save_list(cx, name, self.iter().map(Scalar::to_value))
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        let at = cx.at(name)?;
        let Some(n) = read_count(&at, name)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(n.min(1024));
        for i in 0..n {
            let item = item_name(name, i);
            let v = at.read_value(&item)?.ok_or_else(|| Error::Corrupt {
                path: format!("{}@{item}", cx.path),
                reason: format!("list item {i} of {n} is missing"),
            })?;
            out.push(S::from_value(v).map_err(|e| scalar_error(&cx.path, &item, e))?);
        }
        Ok(Some(out))
    }
    fn same(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same(b))
    }
    fn if_missing() -> Option<Self> {
        Some(Vec::new())
    }
}

impl<O: Object> Field for Vec<Shared<O>> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        let old = read_count(&cx.at(name)?, name).unwrap_or(None).unwrap_or(0);
        for (i, v) in self.iter().enumerate() {
            cx.save_shared(&item_name(name, i), v)?;
        }
        for i in self.len()..old {
            let item = item_name(name, i);
            if cx.link_exists(&item)? {
                cx.unlink(&item)?;
            }
        }
        write_count(&cx.at(name)?, name, self.len())
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        let Some(n) = read_count(&cx.at(name)?, name)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(n.min(1024));
        for i in 0..n {
            let item = item_name(name, i);
            let s = cx.load_shared(&item)?.ok_or_else(|| Error::Corrupt {
                path: join(&cx.path, &item),
                reason: format!("list item {i} of {n} is missing"),
            })?;
            out.push(s);
        }
        Ok(Some(out))
    }
    fn same(&self, _other: &Self) -> bool {
        false
    }
    fn if_missing() -> Option<Self> {
        Some(Vec::new())
    }
}

/// Checks every key of a dict field before anything is written.
fn check_keys<'k>(
    cx: &SaveCtx<'_, '_>,
    name: &str,
    keys: impl Iterator<Item = &'k String>,
) -> Result<()> {
    for key in keys {
        if !is_valid_key(key) {
            return Err(Error::InvalidKey {
                path: cx.path.clone(),
                field: name.to_owned(),
                key: key.clone(),
            });
        }
    }
    Ok(())
}

/// The keys of dict field `name` among `names` (attribute or link names).
pub(crate) fn dict_keys(names: &[String], name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    names
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix))
        .filter(|k| is_valid_key(k))
        .map(str::to_owned)
        .collect()
}

/// Writes `entries` as the dict family of `name` (`name-<key>`), dropping stored keys that
/// `entries` lacks.
pub(crate) fn save_dict(
    cx: &SaveCtx<'_, '_>,
    name: &str,
    entries: &BTreeMap<String, crate::Value>,
) -> Result<()> {
    check_keys(cx, name, entries.keys())?;
    let at = cx.at(name)?;
    let names = cx
        .grp(name)?
        .attr_names()
        .ctx("list attributes", || cx.path.clone())?;
    for key in dict_keys(&names, name) {
        if !entries.contains_key(&key) {
            let attr = format!("{name}-{key}");
            at.delete(&attr)?;
            at.delete(&format!("{attr}{TYPE_SUFFIX}"))?;
        }
    }
    for (key, v) in entries {
        at.write_value(&format!("{name}-{key}"), v)?;
    }
    Ok(())
}

impl<S: Scalar> Field for BTreeMap<String, S> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        let entries = self
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect();
        save_dict(cx, name, &entries)
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        let names = cx
            .grp(name)?
            .attr_names()
            .ctx("list attributes", || cx.path.clone())?;
        let at = cx.at(name)?;
        let mut out = BTreeMap::new();
        for key in dict_keys(&names, name) {
            let attr = format!("{name}-{key}");
            if let Some(v) = at.read_value(&attr)? {
                out.insert(
                    key,
                    S::from_value(v).map_err(|e| scalar_error(&cx.path, &attr, e))?,
                );
            }
        }
        Ok(Some(out))
    }
    fn same(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((k1, a), (k2, b))| k1 == k2 && a.same(b))
    }
    fn if_missing() -> Option<Self> {
        Some(BTreeMap::new())
    }
}

impl<O: Object> Field for BTreeMap<String, Shared<O>> {
    fn save<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>, name: &str) -> Result<()> {
        check_keys(cx, name, self.keys())?;
        let names = cx
            .grp(name)?
            .member_names()
            .ctx("list members", || cx.path.clone())?;
        for key in dict_keys(&names, name) {
            if !self.contains_key(&key) {
                cx.unlink(&format!("{name}-{key}"))?;
            }
        }
        for (key, v) in self {
            cx.save_shared(&format!("{name}-{key}"), v)?;
        }
        Ok(())
    }
    fn load(cx: &mut LoadCtx<'_>, name: &str) -> Result<Option<Self>> {
        let names = cx
            .grp(name)?
            .member_names()
            .ctx("list members", || cx.path.clone())?;
        let mut out = BTreeMap::new();
        for key in dict_keys(&names, name) {
            if let Some(s) = cx.load_shared(&format!("{name}-{key}"))? {
                out.insert(key, s);
            }
        }
        Ok(Some(out))
    }
    fn same(&self, _other: &Self) -> bool {
        false
    }
    fn if_missing() -> Option<Self> {
        Some(BTreeMap::new())
    }
}
