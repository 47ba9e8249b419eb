//! The reader behind `h5pom check`, run in the probe's child process: it opens every object of
//! a file once (following hard links; soft and external links are not followed), reads every
//! attribute, and reads part of every dataset (its first and last chunk) or, with `--full`, all
//! of it. It stops at the first object that fails and says which, and why (libhdf5's reason).
//!
//! Bounded on hostile files: every read is at most [`MAX_READ_BYTES`] of memory, sizes the file
//! declares are multiplied with overflow checks, and an attribute (which HDF5 reads whole) that
//! declares more than [`MAX_ATTR_BYTES`] is refused.

use std::collections::HashSet;
use std::fmt;

use h5pom_store::pipeline::{Concurrency, Pipeline};
use h5pom_store::reexports::hdf5::filters::Filter;
use h5pom_store::reexports::hdf5::types::{
    FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode,
};
use h5pom_store::reexports::hdf5::{
    self, Container, H5Type, Hyperslab, IndexType, IterationOrder, LinkType, Location,
    LocationType, Selection, SliceOrIndex,
};
use h5pom_store::reexports::ndarray::IxDyn;
use h5pom_store::{Dtype, Element};

/// The most memory one read of dataset values takes.
pub(crate) const MAX_READ_BYTES: usize = 8 << 20;
/// The largest attribute read (HDF5 reads attributes whole).
pub(crate) const MAX_ATTR_BYTES: usize = 64 << 20;
/// The largest dataset read whole through h5pom's pipeline (filters libhdf5 lacks).
pub(crate) const MAX_PIPELINE_BYTES: usize = 256 << 20;
/// Fixed-length strings are read converted to this length (the file's bytes are still read).
const FIXED_STR: usize = 8;

/// How much of each dataset to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The first and the last chunk (or, unchunked, a bounded box at each end).
    Ends,
    /// Every element.
    Full,
}

/// What the walk read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// Groups opened.
    pub(crate) groups: usize,
    /// Datasets opened.
    pub(crate) datasets: usize,
    /// Named datatypes (and objects of other kinds) opened.
    pub(crate) others: usize,
    /// Attributes read.
    pub(crate) attributes: usize,
    /// Attributes and datasets of an element type check cannot read (opened, type and shape
    /// read, values not read), by type.
    pub(crate) unread: Vec<String>,
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} groups, {} datasets, {} other objects opened; {} attributes read",
            self.groups, self.datasets, self.others, self.attributes
        )?;
        if !self.unread.is_empty() {
            let mut kinds = self.unread.clone();
            kinds.sort();
            kinds.dedup();
            write!(
                f,
                "; values of {} not read (types check cannot read: {})",
                self.unread.len(),
                kinds.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The first object that failed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Its path (the first path it was reached by).
    pub(crate) path: String,
    /// What was being done.
    pub(crate) op: &'static str,
    /// Why it failed: libhdf5's error, or the limit that refused it.
    pub(crate) reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot {}: {}",
            shown(&self.path),
            self.op,
            self.reason
        )
    }
}

impl std::error::Error for Failure {}

trait At<T> {
    fn at(self, op: &'static str, path: &str) -> Result<T, Failure>;
}

impl<T, E: fmt::Display> At<T> for Result<T, E> {
    fn at(self, op: &'static str, path: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            path: path.to_owned(),
            op,
            reason: e.to_string(),
        })
    }
}

/// A path as printed: as is, or quoted and escaped if it holds control characters.
fn shown(p: &str) -> String {
    if p.chars().any(char::is_control) {
        format!("{p:?}")
    } else {
        p.to_owned()
    }
}

fn join(parent: &str, name: &str) -> String {
    crate::target::join(parent, name)
}

/// Walks the whole file from `/`, depth first in name order.
pub(crate) fn walk(file: &hdf5::File, extent: Extent) -> Result<Coverage, Failure> {
    let mut w = Walker {
        extent,
        seen: HashSet::new(),
        cov: Coverage::default(),
    };
    let root: hdf5::Group = (**file).clone();
    let info = root.loc_info().at("read object info", "/")?;
    w.seen.insert(format!("{:?}", info.token));
    w.cov.groups += 1;
    w.attributes(&root, "/")?;
    let mut stack = vec![("/".to_owned(), root)];
    while let Some((path, group)) = stack.pop() {
        let links = group
            .links(IndexType::Name, IterationOrder::Increasing)
            .at("list links", &path)?;
        let mut sub = Vec::new();
        for (name, link) in links {
            if link.link_type != LinkType::Hard {
                continue;
            }
            let here = join(&path, &name);
            let info = group
                .loc_info_by_name(&name)
                .at("read object info", &here)?;
            if !w.seen.insert(format!("{:?}", info.token)) {
                continue;
            }
            match info.loc_type {
                LocationType::Group => {
                    let g = group.group(&name).at("open group", &here)?;
                    w.cov.groups += 1;
                    w.attributes(&g, &here)?;
                    sub.push((here, g));
                }
                LocationType::Dataset => {
                    let ds = group.dataset(&name).at("open dataset", &here)?;
                    w.cov.datasets += 1;
                    w.attributes(&ds, &here)?;
                    w.dataset(&ds, &here)?;
                }
                _ => {
                    let o = group.open_by_token(info.token).at("open object", &here)?;
                    w.cov.others += 1;
                    w.attributes(&o, &here)?;
                }
            }
        }
        stack.extend(sub.into_iter().rev());
    }
    Ok(w.cov)
}

struct Walker {
    extent: Extent,
    seen: HashSet<String>,
    cov: Coverage,
}

impl Walker {
    fn attributes(&mut self, loc: &Location, path: &str) -> Result<(), Failure> {
        let names = loc.attr_names().at("list attributes", path)?;
        for name in names {
            let here = format!("{path}@{name}");
            let attr = loc.attr(&name).at("open attribute", &here)?;
            let space = attr.space().at("read attribute shape", &here)?;
            let desc = attr.dtype().at("read attribute type", &here)?;
            self.cov.attributes += 1;
            if space.is_null() {
                continue;
            }
            let Some(kind) = desc.to_descriptor().ok().as_ref().and_then(Kind::of) else {
                self.cov.unread.push(type_name(&desc));
                continue;
            };
            let n = elements(&space.shape()).at("read attribute", &here)?;
            let bytes = n.saturating_mul(kind.mem_size());
            if bytes > MAX_ATTR_BYTES {
                return Err(Failure {
                    path: here,
                    op: "read attribute",
                    reason: format!(
                        "it declares {n} elements, more than check reads ({MAX_ATTR_BYTES} bytes)"
                    ),
                });
            }
            kind.read(&attr, None).at("read attribute", &here)?;
        }
        Ok(())
    }

    fn dataset(&mut self, ds: &hdf5::Dataset, path: &str) -> Result<(), Failure> {
        let space = ds.space().at("read dataset shape", path)?;
        let dtype = ds.dtype().at("read dataset type", path)?;
        // The creation properties: layout, chunking, filters, fill value.
        ds.dcpl().at("read dataset creation properties", path)?;
        if space.is_null() {
            return Ok(());
        }
        let shape = space.shape();
        let total = elements(&shape).at("read dataset", path)?;
        if total == 0 {
            return Ok(());
        }
        if ds.filters().iter().any(|f| !f.is_available()) {
            return self.through_pipeline(ds, &dtype, &shape, total, path);
        }
        let Some(kind) = dtype.to_descriptor().ok().as_ref().and_then(Kind::of) else {
            self.cov.unread.push(type_name(&dtype));
            return Ok(());
        };
        if shape.is_empty() {
            // A scalar.
            return kind.read(ds, None).map(drop).at("read dataset", path);
        }
        let max = (MAX_READ_BYTES / kind.mem_size()).max(1);
        let read = |b: Box_| {
            kind.read(ds, Some(b.selection()))
                .map(drop)
                .at("read dataset", path)
        };
        match self.extent {
            Extent::Full => Blocks::new(&shape, max).try_for_each(read),
            Extent::Ends => {
                let chunk = ds.chunk().filter(|c| c.len() == shape.len());
                let (first, last) = ends(&shape, chunk.as_deref(), max);
                read(first.clone())?;
                if last != first {
                    read(last)?;
                }
                Ok(())
            }
        }
    }

    /// A dataset with a filter libhdf5 lacks (h5pom's LZ4 and Zstd): read whole by the store's
    /// pipeline, which decodes them, if it is numeric and small enough.
    fn through_pipeline(
        &mut self,
        ds: &hdf5::Dataset,
        dtype: &hdf5::Datatype,
        shape: &[usize],
        total: usize,
        path: &str,
    ) -> Result<(), Failure> {
        let missing: Vec<String> = ds
            .filters()
            .iter()
            .filter(|f| !f.is_available())
            .map(filter_name)
            .collect();
        let Some(d) = Dtype::from_datatype(dtype) else {
            self.cov.unread.push(format!(
                "{} with filter {}",
                type_name(dtype),
                missing.join("+")
            ));
            return Ok(());
        };
        if total.saturating_mul(d.size()) > MAX_PIPELINE_BYTES {
            self.cov.unread.push(format!(
                "{} of {shape:?} with filter {}",
                d.name(),
                missing.join("+")
            ));
            return Ok(());
        }
        let p = Pipeline::new(Concurrency::Serial);
        fn whole<T: Element>(p: &Pipeline, ds: &hdf5::Dataset) -> Result<(), String> {
            p.read::<T, IxDyn>(ds).map(drop).map_err(|e| e.to_string())
        }
        match d {
            Dtype::I8 => whole::<i8>(&p, ds),
            Dtype::I16 => whole::<i16>(&p, ds),
            Dtype::I32 => whole::<i32>(&p, ds),
            Dtype::I64 => whole::<i64>(&p, ds),
            Dtype::U8 => whole::<u8>(&p, ds),
            Dtype::U16 => whole::<u16>(&p, ds),
            Dtype::U32 => whole::<u32>(&p, ds),
            Dtype::U64 => whole::<u64>(&p, ds),
            Dtype::F32 => whole::<f32>(&p, ds),
            Dtype::F64 => whole::<f64>(&p, ds),
        }
        .at("read dataset", path)
    }
}

fn filter_name(f: &Filter) -> String {
    match f {
        Filter::User(id, _) => format!("#{id}"),
        other => format!("{other:?}"),
    }
}

fn type_name(dt: &hdf5::Datatype) -> String {
    match dt.to_descriptor() {
        Ok(TypeDescriptor::Compound(_)) => "compound".into(),
        Ok(TypeDescriptor::Enum(_)) => "enum".into(),
        Ok(TypeDescriptor::FixedArray(..)) => "array".into(),
        Ok(TypeDescriptor::VarLenArray(_)) => "vlen".into(),
        Ok(TypeDescriptor::Reference(_)) => "reference".into(),
        Ok(d) => d.to_string(),
        Err(_) => "other".into(),
    }
}

/// How many elements `shape` holds, or an error if the product overflows.
fn elements(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("its shape {shape:?} holds more elements than an address can count"))
}

/// The element types check reads, each into a native type HDF5 converts to.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    UInt,
    Float,
    Bool,
    Ascii,
    Unicode,
    VarAscii,
    VarUnicode,
}

impl Kind {
    fn of(desc: &TypeDescriptor) -> Option<Kind> {
        Some(match desc {
            TypeDescriptor::Integer(_) => Kind::Int,
            TypeDescriptor::Unsigned(_) => Kind::UInt,
            TypeDescriptor::Float(_) => Kind::Float,
            TypeDescriptor::Boolean => Kind::Bool,
            TypeDescriptor::FixedAscii(_) => Kind::Ascii,
            TypeDescriptor::FixedUnicode(_) => Kind::Unicode,
            TypeDescriptor::VarLenAscii => Kind::VarAscii,
            TypeDescriptor::VarLenUnicode => Kind::VarUnicode,
            _ => return None,
        })
    }

    /// Bytes per element in memory (variable-length strings: the pointer; their bytes are
    /// libhdf5's allocation, bounded by the file).
    fn mem_size(self) -> usize {
        match self {
            Kind::Int | Kind::UInt | Kind::Float | Kind::VarAscii | Kind::VarUnicode => 8,
            Kind::Bool => 1,
            Kind::Ascii | Kind::Unicode => FIXED_STR,
        }
    }

    /// Reads the selected elements of `c` (all of them if `sel` is `None`); returns the count.
    fn read(self, c: &Container, sel: Option<Selection>) -> hdf5::Result<usize> {
        fn read_as<T: H5Type>(c: &Container, sel: Option<Selection>) -> hdf5::Result<usize> {
            Ok(match sel {
                None => c.read_raw::<T>()?.len(),
                Some(s) => c.read_slice::<T, _, IxDyn>(s)?.len(),
            })
        }
        match self {
            Kind::Int => read_as::<i64>(c, sel),
            Kind::UInt => read_as::<u64>(c, sel),
            Kind::Float => read_as::<f64>(c, sel),
            Kind::Bool => read_as::<bool>(c, sel),
            Kind::Ascii => read_as::<FixedAscii<FIXED_STR>>(c, sel),
            Kind::Unicode => read_as::<FixedUnicode<FIXED_STR>>(c, sel),
            Kind::VarAscii => read_as::<VarLenAscii>(c, sel),
            Kind::VarUnicode => read_as::<VarLenUnicode>(c, sel),
        }
    }
}

/// A box of a dataset: start and count per axis.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Box_ {
    start: Vec<usize>,
    count: Vec<usize>,
}

impl Box_ {
    fn selection(&self) -> Selection {
        let dims: Vec<SliceOrIndex> = self
            .start
            .iter()
            .zip(&self.count)
            .map(|(&start, &count)| SliceOrIndex::SliceCount {
                start,
                step: 1,
                count,
                block: 1,
            })
            .collect();
        Selection::Hyperslab(Hyperslab::from(dims))
    }
}

/// Shrinks `count` from the first axis on until it holds at most `max` elements (at least one
/// per axis): the box keeps its last axes whole as long as they fit.
fn cap(mut count: Vec<usize>, max: usize) -> Vec<usize> {
    for i in 0..count.len() {
        let rest = count[i + 1..]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX);
        if count[i].saturating_mul(rest) > max {
            count[i] = (max / rest).max(1);
        }
    }
    count
}

/// The boxes of [`Extent::Ends`]: the first and the last chunk of a chunked dataset, or a box
/// at each end of an unchunked one; each capped at `max` elements.
fn ends(shape: &[usize], chunk: Option<&[usize]>, max: usize) -> (Box_, Box_) {
    let (first, last_start, last_count) = match chunk {
        Some(c) if c.iter().all(|&d| d > 0) => {
            let first: Vec<usize> = c.iter().zip(shape).map(|(&c, &s)| c.min(s)).collect();
            let start: Vec<usize> = c
                .iter()
                .zip(shape)
                .map(|(&c, &s)| (s - 1) / c * c)
                .collect();
            let count = c
                .iter()
                .zip(shape)
                .zip(&start)
                .map(|((&c, &s), &st)| c.min(s - st))
                .collect();
            (first, start, count)
        }
        _ => (shape.to_vec(), vec![0; shape.len()], shape.to_vec()),
    };
    let first = Box_ {
        start: vec![0; shape.len()],
        count: cap(first, max),
    };
    // The last box ends where the dataset ends.
    let count = cap(last_count, max);
    let start = last_start
        .iter()
        .zip(shape)
        .zip(&count)
        .map(|((&st, &s), &n)| st.max(s - n))
        .collect();
    (first, Box_ { start, count })
}

/// Boxes covering a shape in row-major order, each of at most `max` elements.
struct Blocks {
    shape: Vec<usize>,
    /// The axis the boxes step along; axes after it are whole, axes before it one index.
    axis: usize,
    /// Indices along the axes up to `axis`; `None` when done.
    at: Option<Vec<usize>>,
    step: usize,
}

impl Blocks {
    fn new(shape: &[usize], max: usize) -> Self {
        // The first axis from which the trailing box fits.
        let mut inner = 1usize;
        let mut k = shape.len();
        while k > 0 {
            match inner.checked_mul(shape[k - 1]) {
                Some(n) if n <= max => {
                    inner = n;
                    k -= 1;
                }
                _ => break,
            }
        }
        let empty = shape.contains(&0);
        if k == 0 {
            // The whole dataset fits in one box.
            return Blocks {
                shape: shape.to_vec(),
                axis: 0,
                at: (!empty).then(Vec::new),
                step: 0,
            };
        }
        Blocks {
            shape: shape.to_vec(),
            axis: k - 1,
            at: (!empty).then(|| vec![0; k]),
            step: (max / inner).max(1),
        }
    }
}

impl Iterator for Blocks {
    type Item = Box_;

    fn next(&mut self) -> Option<Box_> {
        let at = self.at.as_mut()?;
        if at.is_empty() {
            self.at = None;
            return Some(Box_ {
                start: vec![0; self.shape.len()],
                count: self.shape.clone(),
            });
        }
        let a = self.axis;
        let mut start = at.clone();
        start.extend(std::iter::repeat_n(0, self.shape.len() - a - 1));
        let mut count = vec![1; a];
        count.push(self.step.min(self.shape[a] - at[a]));
        count.extend_from_slice(&self.shape[a + 1..]);
        // Advance the odometer.
        at[a] += self.step;
        let mut i = a;
        loop {
            if at[i] < self.shape[i] {
                break;
            }
            at[i] = 0;
            if i == 0 {
                self.at = None;
                break;
            }
            i -= 1;
            at[i] += 1;
        }
        Some(Box_ { start, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(shape: &[usize], max: usize) -> Vec<usize> {
        let n: usize = shape.iter().product();
        let mut hits = vec![0usize; n];
        for b in Blocks::new(shape, max) {
            let size: usize = b.count.iter().product();
            assert!(size <= max.max(1), "{b:?}");
            // Every element of the box, row-major flat index.
            let mut idx = vec![0usize; shape.len()];
            for _ in 0..size {
                let flat = idx
                    .iter()
                    .zip(&b.start)
                    .zip(shape)
                    .fold(0, |acc, ((&i, &s), &d)| acc * d + i + s);
                hits[flat] += 1;
                for ax in (0..shape.len()).rev() {
                    idx[ax] += 1;
                    if idx[ax] < b.count[ax] {
                        break;
                    }
                    idx[ax] = 0;
                }
            }
        }
        hits
    }

    #[test]
    fn blocks_cover_every_element_once_within_the_bound() {
        for (shape, max) in [
            (vec![10], 3),
            (vec![10], 100),
            (vec![4, 5], 7),
            (vec![4, 5], 3),
            (vec![3, 4, 5], 1),
            (vec![3, 4, 5], 21),
            (vec![2, 3, 4], 24),
            (vec![], 5),
        ] {
            assert!(
                covered(&shape, max).iter().all(|&h| h == 1),
                "{shape:?} by {max}"
            );
        }
        assert_eq!(Blocks::new(&[3, 0], 4).count(), 0);
    }

    #[test]
    fn ends_are_the_first_and_last_chunk_capped() {
        let (a, b) = ends(&[10, 6], Some(&[4, 6]), 1000);
        assert_eq!((a.start, a.count), (vec![0, 0], vec![4, 6]));
        assert_eq!((b.start, b.count), (vec![8, 0], vec![2, 6]));
        let (a, b) = ends(&[10, 6], None, 12);
        assert_eq!((a.start, a.count), (vec![0, 0], vec![2, 6]));
        assert_eq!((b.start, b.count), (vec![8, 0], vec![2, 6]));
        // A declared huge chunk is read only in part.
        let (a, _) = ends(&[1 << 40], Some(&[1 << 40]), 1 << 20);
        assert_eq!(a.count, vec![1 << 20]);
        assert_eq!(elements(&[1 << 40, 1 << 40]).ok(), None);
    }
}
