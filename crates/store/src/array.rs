//! Array fields: `ndarray` arrays stored as chunked, resizable datasets.

use std::sync::OnceLock;

use hdf5::{Dataset, Group};
use ndarray::{Array, ArrayView, Dimension, IxDyn};

use crate::dtype::{Dtype, Element};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::name::join;

/// Target size of one chunk when h5pom picks the chunk shape.
pub const TARGET_CHUNK_BYTES: usize = 1 << 20;

/// The chunk shape h5pom uses for an array of this shape and element size.
///
/// Rule: keep the trailing axes whole and split the leading axes, so that one chunk holds about
/// [`TARGET_CHUNK_BYTES`] (1 MiB); every chunk dimension is at least 1, also for zero-length axes.
pub fn auto_chunk(shape: &[usize], elem_size: usize) -> Vec<usize> {
    let mut chunk: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
    let mut budget = (TARGET_CHUNK_BYTES / elem_size.max(1)).max(1);
    // Walk from the last axis: take whole axes while they fit, then a slice of the next one.
    for i in (0..chunk.len()).rev() {
        if chunk[i] <= budget {
            budget /= chunk[i];
        } else {
            chunk[i] = budget.max(1);
            for c in chunk.iter_mut().take(i) {
                *c = 1;
            }
            break;
        }
    }
    chunk
}

/// Shape and dtype of a stored array, read from the dataset's metadata only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// numpy name of the element type, or the HDF5 type if not numeric.
    pub dtype: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The chunk shape, if chunked.
    pub chunks: Option<Vec<usize>>,
}

pub(crate) fn info(ds: &Dataset, path: &str) -> Result<ArrayInfo> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read dataset type", || path.to_owned())?;
    Ok(ArrayInfo {
        dtype: Dtype::from_descriptor(&desc).map_or_else(|| desc.to_string(), |d| d.name().into()),
        shape: ds.shape(),
        chunks: ds.chunk(),
    })
}

/// Checks a dataset holds `T` with a rank `D` accepts, before reading any data.
pub(crate) fn check<T: Element, D: Dimension>(ds: &Dataset, path: &str, field: &str) -> Result<()> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read dataset type", || path.to_owned())?;
    let found = Dtype::from_descriptor(&desc);
    let ndim = ds.ndim();
    if found != Some(T::DTYPE) || D::NDIM.is_some_and(|n| n != ndim) {
        let found_name = found.map_or_else(|| desc.to_string(), |d| d.name().into());
        return Err(Error::TypeMismatch {
            path: path.to_owned(),
            field: field.to_owned(),
            expected: match D::NDIM {
                Some(n) => format!("{} array of rank {n}", T::DTYPE),
                None => format!("{} array", T::DTYPE),
            },
            found: format!("{found_name} array of rank {ndim}"),
        });
    }
    Ok(())
}

/// Writes `a` as dataset `name` in `group`: in place if a dataset of the same dtype and shape is
/// there, otherwise replacing whatever the name held.
pub(crate) fn write<T: Element, D: Dimension>(
    group: &Group,
    path: &str,
    name: &str,
    a: ArrayView<'_, T, D>,
) -> Result<()> {
    let here = || join(path, name);
    if crate::ffi::object::link_exists(group, name).ctx("check link", here)? {
        if let Ok(ds) = group.dataset(name)
            && check::<T, D>(&ds, path, name).is_ok()
            && ds.shape() == a.shape()
        {
            return write_into(&ds, a).ctx("write dataset", here);
        }
        group.unlink(name).ctx("replace dataset", here)?;
    }
    let builder = group.new_dataset::<T>();
    let ds = if a.ndim() == 0 {
        // HDF5 cannot chunk a scalar dataspace: rank-0 arrays are stored contiguous.
        builder.shape(()).create(name)
    } else {
        builder
            .shape(a.shape().iter().map(|&n| (n, None)).collect::<Vec<_>>())
            .chunk(auto_chunk(a.shape(), T::DTYPE.size()))
            .create(name)
    }
    .ctx("create dataset", here)?;
    write_into(&ds, a).ctx("write dataset", here)
}

fn write_into<T: Element, D: Dimension>(ds: &Dataset, a: ArrayView<'_, T, D>) -> hdf5::Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    if a.is_standard_layout() {
        ds.write(a)
    } else {
        ds.write(&a.as_standard_layout())
    }
}

/// Reads a whole dataset as `Array<T, D>`, checking dtype and rank first.
pub(crate) fn read<T: Element, D: Dimension>(
    ds: &Dataset,
    path: &str,
    field: &str,
) -> Result<Array<T, D>> {
    check::<T, D>(ds, path, field)?;
    let here = || join(path, field);
    if ds.size() == 0 {
        let shape = IxDyn(&ds.shape());
        let a =
            Array::<T, IxDyn>::from_shape_vec(shape, Vec::new()).map_err(|e| Error::Corrupt {
                path: here(),
                reason: e.to_string(),
            })?;
        return a.into_dimensionality::<D>().map_err(|e| Error::Corrupt {
            path: here(),
            reason: e.to_string(),
        });
    }
    ds.read::<T, D>().ctx("read dataset", here)
}

/// An array field read on first access.
///
/// Loading an object whose field is a `LazyArray` opens the dataset and checks its dtype and
/// rank, but reads no data; [`get`](Self::get) reads it once. Saving an unread `LazyArray` back
/// to the place it came from writes nothing; saving it elsewhere (another object or file)
/// reads and copies it.
pub struct LazyArray<T: Element, D: Dimension> {
    data: OnceLock<Array<T, D>>,
    source: Option<Source>,
}

struct Source {
    ds: Dataset,
    path: String,
    field: String,
}

impl<T: Element, D: Dimension> LazyArray<T, D> {
    /// An in-memory array, to be written on save.
    pub fn new(a: Array<T, D>) -> Self {
        let data = OnceLock::new();
        let _ = data.set(a);
        LazyArray { data, source: None }
    }

    pub(crate) fn from_dataset(ds: Dataset, path: &str, field: &str) -> Result<Self> {
        check::<T, D>(&ds, path, field)?;
        Ok(LazyArray {
            data: OnceLock::new(),
            source: Some(Source {
                ds,
                path: path.to_owned(),
                field: field.to_owned(),
            }),
        })
    }

    /// True once the data is in memory.
    pub fn is_loaded(&self) -> bool {
        self.data.get().is_some()
    }

    /// The shape, without reading the data.
    pub fn shape(&self) -> Vec<usize> {
        match (self.data.get(), &self.source) {
            (Some(a), _) => a.shape().to_vec(),
            (None, Some(s)) => s.ds.shape(),
            (None, None) => Vec::new(),
        }
    }

    /// The array, read from the file on first call.
    pub fn get(&self) -> Result<&Array<T, D>> {
        if let Some(a) = self.data.get() {
            return Ok(a);
        }
        let a = self.read_source()?;
        Ok(self.data.get_or_init(|| a))
    }

    fn read_source(&self) -> Result<Array<T, D>> {
        match &self.source {
            Some(s) => read(&s.ds, &s.path, &s.field),
            None => Err(Error::Corrupt {
                path: String::new(),
                reason: "LazyArray without data or source".into(),
            }),
        }
    }

    /// Mutable access (reads first if needed); the field will be written on the next save.
    pub fn get_mut(&mut self) -> Result<&mut Array<T, D>> {
        if self.data.get().is_none() {
            let a = self.read_source()?;
            let _ = self.data.set(a);
        }
        self.source = None;
        self.data.get_mut().ok_or_else(|| Error::Corrupt {
            path: String::new(),
            reason: "LazyArray lost its data".into(),
        })
    }

    /// Replaces the array.
    pub fn set(&mut self, a: Array<T, D>) {
        *self = LazyArray::new(a);
    }

    /// Consumes the field, returning the array (read if needed).
    pub fn into_array(mut self) -> Result<Array<T, D>> {
        match self.data.take() {
            Some(a) => Ok(a),
            None => self.read_source(),
        }
    }

    /// Reads a selection (e.g. `ndarray::s![0..10, ..]`) without reading the whole array.
    pub fn read_slice<S, E>(&self, selection: S) -> Result<Array<T, E>>
    where
        S: TryInto<hdf5::Selection>,
        hdf5::Error: From<S::Error>,
        E: Dimension,
    {
        if let Some(s) = &self.source
            && self.data.get().is_none()
        {
            return s
                .ds
                .read_slice::<T, S, E>(selection)
                .ctx("read slice", || join(&s.path, &s.field));
        }
        let a = self.get()?;
        let sel: hdf5::Selection = selection.try_into().map_err(|e| Error::Corrupt {
            path: String::new(),
            reason: format!("bad selection: {}", hdf5::Error::from(e)),
        })?;
        // Write the in-memory array into a scratch in-memory file to apply HDF5's selection
        // semantics exactly; simpler and rarer than re-implementing every selection kind.
        let (scratch, _) =
            crate::file::in_memory_h5("h5pom-scratch").ctx("create scratch file", String::new)?;
        write(&scratch, "/", "a", a.view())?;
        let ds = scratch.dataset("a").ctx("open scratch", String::new)?;
        read_selection::<T, E>(&ds, sel).ctx("read slice", String::new)
    }

    /// Where the data came from, if it was loaded from a file and not modified.
    pub(crate) fn source_location(&self) -> Option<(&str, &str, &Dataset)> {
        if self.data.get().is_some() && self.source.is_none() {
            return None;
        }
        self.source
            .as_ref()
            .map(|s| (s.path.as_str(), s.field.as_str(), &s.ds))
    }
}

fn read_selection<T: Element, E: Dimension>(
    ds: &Dataset,
    sel: hdf5::Selection,
) -> hdf5::Result<Array<T, E>> {
    ds.read_slice::<T, hdf5::Selection, E>(sel)
}

impl<T: Element + std::fmt::Debug, D: Dimension> std::fmt::Debug for LazyArray<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.data.get() {
            Some(a) => write!(f, "LazyArray({a:?})"),
            None => write!(f, "LazyArray(unread, shape {:?})", self.shape()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::auto_chunk;

    #[test]
    fn chunk_rule() {
        assert_eq!(auto_chunk(&[10], 4), vec![10]);
        assert_eq!(auto_chunk(&[0, 3], 4), vec![1, 3]);
        assert_eq!(auto_chunk(&[1 << 24], 4), vec![1 << 18]);
        assert_eq!(auto_chunk(&[1 << 20, 3], 4), vec![(1 << 18) / 3, 3]);
        let c = auto_chunk(&[100, 1000, 1000], 8);
        assert_eq!(c, vec![1, 131, 1000]);
        for shape in [vec![], vec![5, 0, 7], vec![3; 6]] {
            let c = auto_chunk(&shape, 8);
            assert!(c.iter().all(|&x| x >= 1));
            assert_eq!(c.len(), shape.len());
        }
    }
}
