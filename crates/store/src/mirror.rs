//! Virtual mirrors: a group tree of another HDF5 file presented in this file through virtual
//! datasets (VDS), dimension scales included.
//!
//! A history sidecar is reached from a run file through links; h5py and MDAnalysis follow
//! them, but a reader that resolves object references itself (h5netcdf, hence xarray, reads the
//! `DIMENSION_LIST` references in the file it opened) cannot. A mirror gives that reader a
//! tree in the run file whose datasets are VDS mapping the source datasets whole and whose
//! dimension scales are set and attached among the mirrors as among the sources. No data is
//! copied: a mirror holds only metadata (the source's file name, path and selection).
//!
//! A dataset that grows along its first axis (unlimited in the source) is mapped with an
//! unlimited selection on that axis, so the mirror grows with the source without being
//! rewritten; its other axes are fixed at the source's extent when it was mirrored.
//! [`Mirror::update`] re-creates the mirrors of a group when one of its sources changed
//! shape other than along the growing axis, or when members were added or removed. The
//! dimension scale named `sample_scale` (and every dataset that is not itself a dimension
//! scale) grows; other dimension scales (coordinates of the fixed axes) are fixed, so that a
//! coordinate and the axes it labels always agree in length.

use std::collections::HashMap;

use hdf5::{Dataset, Group};

use crate::error::{Error, Hdf5ResultExt, Result};
use crate::name::join;

/// Attribute of a mirrored tree's root (in the mirroring file): the source file's name, as
/// the mappings record it (relative: found beside the mirroring file).
pub const MIRROR_SOURCE_ATTR: &str = "mirror-of";

/// The state of one mirrored tree: what each of its groups held when it was last mirrored.
pub struct Mirror {
    source: String,
    sample_scale: String,
    groups: HashMap<String, Seen>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("source", &self.source)
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// One mirrored group: its source's link count, its datasets (source handle, whether it
/// grows, the shape it was mirrored with) and its sub-groups.
struct Seen {
    links: u64,
    datasets: Vec<(Dataset, bool, Vec<usize>)>,
    groups: Vec<(String, Group)>,
}

impl Seen {
    /// True if no source changed shape but along a growing axis.
    fn unchanged(&self) -> bool {
        self.datasets.iter().all(|(ds, grows, shape)| {
            let now = ds.shape();
            now.len() == shape.len()
                && if *grows {
                    now[1..] == shape[1..]
                } else {
                    now == *shape
                }
        })
    }
}

impl Mirror {
    /// A mirror of trees of the file `source` (its file name, relative to the mirroring
    /// file's directory, or absolute), whose growing dimension scale is named `sample_scale`.
    /// Nothing is known of the mirroring file yet: the first [`update`](Self::update)
    /// re-creates every mirror.
    pub fn new(source: impl Into<String>, sample_scale: impl Into<String>) -> Self {
        Mirror {
            source: source.into(),
            sample_scale: sample_scale.into(),
            groups: HashMap::new(),
        }
    }

    /// Brings the tree under `dst` (at `path`, the same path as `src` in its file: the
    /// scales of a group's datasets must be in that group) up to date with `src`:
    /// re-creates the mirrors of every group whose sources were added, removed or reshaped
    /// since the last update, creates missing groups. Returns how many datasets it mirrored.
    pub fn update(&mut self, src: &Group, dst: &Group, path: &str) -> Result<usize> {
        let links = src.len();
        let fresh = self
            .groups
            .get(path)
            .is_some_and(|s| s.links == links && s.unchanged());
        let mut made = 0;
        if !fresh {
            made += self.rebuild(src, dst, path)?;
        }
        let subs: Vec<(String, Group)> = self.groups[path].groups.clone();
        for (name, sub_src) in subs {
            let here = join(path, &name);
            let sub_dst = dst.group(&name).ctx("open group", || here.clone())?;
            made += self.update(&sub_src, &sub_dst, &here)?;
        }
        Ok(made)
    }

    /// Re-creates the mirrors of the datasets of one group (sub-groups are created, not
    /// entered).
    fn rebuild(&mut self, src: &Group, dst: &Group, path: &str) -> Result<usize> {
        let names = src.member_names().ctx("list members", || path.to_owned())?;
        // Old mirrors first (all of them: their scales' reference lists go with them), and
        // anything the source no longer has.
        for name in dst.member_names().ctx("list members", || path.to_owned())? {
            let keep_group = dst.group(&name).is_ok() && names.contains(&name);
            if !keep_group {
                dst.unlink(&name)
                    .ctx("delete mirror", || join(path, &name))?;
            }
        }
        let mut datasets = Vec::new();
        let mut groups = Vec::new();
        let mut mirrors = Vec::new();
        for name in &names {
            let here = join(path, name);
            if let Ok(ds) = src.dataset(name) {
                let scale = crate::ffi::scale::scale_name(&ds)
                    .ctx("read dimension scale", || here.clone())?;
                let unlimited = ds
                    .space()
                    .map(|s| s.maxdims().first().is_some_and(Option::is_none))
                    .ctx("read dataspace", || here.clone())?;
                let grows = unlimited && scale.as_ref().is_none_or(|n| *n == self.sample_scale);
                let shape = ds.shape();
                let mirror = create(dst, name, &ds, &self.source, &here, grows, &shape)?;
                mirrors.push((ds.clone(), mirror, scale));
                datasets.push((ds, grows, shape));
            } else if let Ok(g) = src.group(name) {
                if !dst.link_exists(name) {
                    dst.create_group(name)
                        .ctx("create group", || here.clone())?;
                }
                groups.push((name.clone(), g));
            }
        }
        // Scales as among the sources: set, then attached axis by axis.
        for (_, mirror, scale) in &mirrors {
            if let Some(name) = scale {
                crate::ffi::scale::set_scale(mirror, name)
                    .ctx("set dimension scale", || mirror.name())?;
            }
        }
        // A scale is found among this group's datasets by identity (a path would do no
        // better: a hard link elsewhere, such as an H5MD view's, names the same scale).
        let tokens = mirrors
            .iter()
            .map(|(ds, _, _)| crate::ffi::object::token(ds))
            .collect::<hdf5::Result<Vec<_>>>()
            .ctx("read object token", || path.to_owned())?;
        for (ds, mirror, _) in &mirrors {
            for axis in 0..ds.ndim() {
                let scales = crate::ffi::scale::attached_scales(ds, axis)
                    .ctx("read dimension scales", || mirror.name())?;
                for scale in scales {
                    let Some(k) = tokens.iter().position(|t| *t == scale) else {
                        return Err(Error::hdf5(
                            "mirror dimension scale",
                            mirror.name(),
                            "the scale is not in the same group".into(),
                        ));
                    };
                    crate::ffi::scale::attach_scale(mirror, &mirrors[k].1, axis)
                        .ctx("attach dimension scale", || mirror.name())?;
                }
            }
        }
        let made = mirrors.len();
        self.groups.insert(
            path.to_owned(),
            Seen {
                links: src.len(),
                datasets,
                groups,
            },
        );
        Ok(made)
    }
}

/// Creates `name` in `dst`: a VDS of `src`'s type and `shape` mapping all of `src` (the
/// dataset at `src_path` in the file `source`), unlimited along the first axis if `grows`.
/// With an empty fixed axis there is nothing to map: the mirror is an ordinary empty dataset.
fn create(
    dst: &Group,
    name: &str,
    src: &Dataset,
    source: &str,
    src_path: &str,
    grows: bool,
    shape: &[usize],
) -> Result<Dataset> {
    let dtype = src.dtype().ctx("read type", || src_path.to_owned())?;
    map_whole(dst, name, &dtype, shape, grows, source, src_path)
}

/// One source of [`stack`]: all of the dataset `path` in the file `file` (a name relative to
/// the stacking file's directory, or absolute), of shape `shape`. An empty `file` is a gap of
/// `shape[0]` rows that read as the fill value (zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackPart {
    /// The source file, as libhdf5 will look it up.
    pub file: String,
    /// The source dataset's path in that file.
    pub path: String,
    /// The source's shape (first axis: rows).
    pub shape: Vec<usize>,
}

/// The parts as the raw VDS calls take them.
fn views(parts: &[StackPart]) -> Vec<crate::ffi::vds::Part<'_>> {
    parts
        .iter()
        .map(|p| crate::ffi::vds::Part {
            file: &p.file,
            path: &p.path,
            shape: &p.shape,
        })
        .collect()
}

/// Creates `name` in `dst`: a virtual dataset of type `dtype` holding the `parts` one after
/// the other along the first axis (the rows of part 0, then those of part 1, …). No data is
/// copied. Every part must have the same shape after the first axis. Without any row (or with
/// an empty axis after the first) there is nothing to map, and the dataset is an ordinary
/// empty one of that shape.
pub fn stack(
    dst: &Group,
    name: &str,
    dtype: &hdf5::Datatype,
    parts: &[StackPart],
) -> Result<Dataset> {
    let here = || join(&dst.name(), name);
    let Some(first) = parts.first() else {
        return Err(Error::hdf5(
            "stack datasets",
            here(),
            "no part to stack".into(),
        ));
    };
    if first.shape.is_empty() {
        return Err(Error::hdf5(
            "stack datasets",
            here(),
            "a scalar dataset has no rows to stack".into(),
        ));
    }
    let tail = &first.shape[1..];
    let rows: usize = parts
        .iter()
        .map(|p| p.shape.first().copied().unwrap_or(0))
        .sum();
    if rows == 0 || tail.contains(&0) || parts.iter().all(|p| p.file.is_empty()) {
        let shape: Vec<usize> = std::iter::once(rows).chain(tail.iter().copied()).collect();
        return dst
            .new_dataset_builder()
            .empty_as(dtype)
            .shape(shape)
            .create(name)
            .ctx("create dataset", here);
    }
    crate::ffi::vds::create_concat(dst, name, dtype, tail, &views(parts))
        .ctx("create virtual dataset", here)
}

/// Creates `name` in `dst`: a virtual dataset of type `dtype` holding the 2-D `[sample, …]`
/// `parts` side by side along their second axis (the columns of part 0, then those of part 1,
/// …), each mapped with an unlimited selection along the first axis, so that it grows with
/// its sources as [`Mirror`]s do. `samples` is its extent now. An empty `file` is a gap whose
/// `shape[1]` columns read as the fill value.
pub fn side_by_side(
    dst: &Group,
    name: &str,
    dtype: &hdf5::Datatype,
    samples: usize,
    parts: &[StackPart],
) -> Result<Dataset> {
    crate::ffi::vds::create_side_by_side(dst, name, dtype, samples, &views(parts))
        .ctx("create virtual dataset", || join(&dst.name(), name))
}

/// Creates `name` in `dst`: a virtual dataset of type `dtype` and shape `shape` mapping all of
/// the dataset `src_path` of the file `source` one to one, unlimited along the first axis when
/// `grows` (as [`Mirror`] does for a growing series). With an empty fixed axis it is an
/// ordinary empty dataset.
pub fn map_whole(
    dst: &Group,
    name: &str,
    dtype: &hdf5::Datatype,
    shape: &[usize],
    grows: bool,
    source: &str,
    src_path: &str,
) -> Result<Dataset> {
    let here = || join(&dst.name(), name);
    let mappable = !shape.is_empty()
        && shape
            .iter()
            .enumerate()
            .all(|(k, &n)| n > 0 || (k == 0 && grows));
    if mappable {
        return crate::ffi::vds::create_virtual(dst, name, dtype, shape, grows, source, src_path)
            .ctx("create virtual dataset", here);
    }
    dst.new_dataset_builder()
        .empty_as(dtype)
        .shape(shape)
        .create(name)
        .ctx("create dataset", here)
}

/// Makes `ds` a dimension scale named `name` (HDF5 `H5DSset_scale`).
pub fn set_scale(ds: &Dataset, name: &str) -> Result<()> {
    crate::ffi::scale::set_scale(ds, name).ctx("set dimension scale", || ds.name())
}

/// Attaches the dimension scale `scale` to axis `axis` of `ds` (HDF5 `H5DSattach_scale`).
pub fn attach_scale(ds: &Dataset, scale: &Dataset, axis: usize) -> Result<()> {
    crate::ffi::scale::attach_scale(ds, scale, axis).ctx("attach dimension scale", || ds.name())
}
