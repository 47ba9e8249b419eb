//! Array fields: `ndarray` arrays stored as chunked, resizable datasets.

use std::sync::OnceLock;

use hdf5::{Dataset, Group};
use ndarray::{Array, ArrayView, Dimension};

use crate::error::{Error, Hdf5ResultExt, Result};
use crate::file::FileInner;
use crate::name::join;
use crate::pipeline::{ArrayOptions, Dtype, Element, PipelineError, WriteJob};

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

impl ArrayInfo {
    /// Describes the dataset `ds` (at `path`, for errors) from its metadata only.
    pub fn of(ds: &Dataset, path: &str) -> Result<ArrayInfo> {
        info(ds, path)
    }
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

fn pipeline_err(path: &str, name: &str) -> impl Fn(PipelineError) -> Error {
    let here = join(path, name);
    move |source| Error::Pipeline {
        path: here.clone(),
        source: Box::new(source),
    }
}

/// Writes `a` as dataset `name` in `group` through the file's array pipeline: in place if the
/// dataset has the same dtype and filters, resized if only the shape changed, replaced
/// otherwise.
pub(crate) fn write<T: Element, D: Dimension>(
    file: &FileInner,
    group: &Group,
    path: &str,
    name: &str,
    a: ArrayView<'_, T, D>,
    opts: Option<&ArrayOptions>,
) -> Result<()> {
    let default;
    let opts = match opts {
        Some(o) => o,
        None => {
            default = file.array_options();
            &default
        }
    };
    file.pipeline()
        .write(group, name, a, opts)
        .map(|_| ())
        .map_err(pipeline_err(path, name))
}

/// Reads a whole dataset as `Array<T, D>`, checking dtype and rank first; chunks are decoded
/// in parallel by the pipeline (which also reads LZ4 and Zstd, which libhdf5 lacks).
pub(crate) fn read<T: Element, D: Dimension>(
    file: Option<&FileInner>,
    ds: &Dataset,
    path: &str,
    field: &str,
) -> Result<Array<T, D>> {
    check::<T, D>(ds, path, field)?;
    let r = match file {
        Some(f) => f.pipeline().read::<T, D>(ds),
        None => {
            crate::pipeline::Pipeline::new(crate::pipeline::Concurrency::Serial).read::<T, D>(ds)
        }
    };
    r.map_err(pipeline_err(path, field))
}

/// An array that waits in a save to be written by one parallel pass with many others.
pub(crate) struct Deferred<'d> {
    pub(crate) group: Group,
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) bytes: std::borrow::Cow<'d, [u8]>,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) opts: ArrayOptions,
}

/// Arrays collected by saves made with a deferral sink (see [`Embed`](crate::Embed)), written
/// together by [`File::write_deferred`](crate::File::write_deferred).
#[derive(Default)]
pub struct DeferredArrays<'d> {
    pub(crate) items: Vec<Deferred<'d>>,
}

impl<'d> DeferredArrays<'d> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of arrays waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Total bytes waiting (before compression).
    pub fn bytes(&self) -> usize {
        self.items.iter().map(|d| d.bytes.len()).sum()
    }

    pub(crate) fn push<T: Element, D: Dimension>(
        &mut self,
        group: &Group,
        path: &str,
        name: &str,
        a: ArrayView<'d, T, D>,
        opts: ArrayOptions,
    ) {
        let shape = a.shape().to_vec();
        let bytes = match a.to_slice() {
            Some(s) => std::borrow::Cow::Borrowed(crate::pipeline::as_bytes(s)),
            None => {
                let v: Vec<T> = a.iter().copied().collect();
                std::borrow::Cow::Owned(crate::pipeline::as_bytes(&v).to_vec())
            }
        };
        self.items.push(Deferred {
            group: group.clone(),
            path: path.to_owned(),
            name: name.to_owned(),
            bytes,
            dtype: T::DTYPE,
            shape,
            opts,
        });
    }

    /// The same batch holding copies of the borrowed arrays (owned ones are moved), so that it
    /// can outlive the data it was collected from, e.g. to be written by another thread while
    /// the data changes. Copies go into buffers taken from `pool` when it has some (the
    /// buffers of an earlier batch, [`into_buffers`](Self::into_buffers)), so that a batch per
    /// tick does not allocate (and fault in) fresh memory each time.
    pub fn into_owned(self, pool: &mut Vec<Vec<u8>>) -> DeferredArrays<'static> {
        let items = self
            .items
            .into_iter()
            .map(|d| {
                let bytes = match d.bytes {
                    std::borrow::Cow::Owned(v) => v,
                    std::borrow::Cow::Borrowed(b) => {
                        // The buffer of the pool closest above in size, else any.
                        let mut buf = pool
                            .iter()
                            .position(|v| v.capacity() >= b.len())
                            .map(|i| pool.swap_remove(i))
                            .or_else(|| pool.pop())
                            .unwrap_or_default();
                        buf.clear();
                        buf.extend_from_slice(b);
                        buf
                    }
                };
                Deferred {
                    group: d.group,
                    path: d.path,
                    name: d.name,
                    bytes: std::borrow::Cow::Owned(bytes),
                    dtype: d.dtype,
                    shape: d.shape,
                    opts: d.opts,
                }
            })
            .collect();
        DeferredArrays { items }
    }

    /// The owned buffers of the batch, to be reused by [`into_owned`](Self::into_owned).
    pub fn into_buffers(self) -> Vec<Vec<u8>> {
        self.items
            .into_iter()
            .filter_map(|d| match d.bytes {
                std::borrow::Cow::Owned(v) => Some(v),
                std::borrow::Cow::Borrowed(_) => None,
            })
            .collect()
    }

    /// Writes everything in one parallel pass of `file`'s pipeline.
    pub(crate) fn write(&self, file: &FileInner) -> Result<crate::pipeline::WriteStats> {
        let jobs: Vec<WriteJob<'_>> = self
            .items
            .iter()
            .map(|d| {
                WriteJob::from_bytes(
                    &d.group,
                    &d.name,
                    &d.bytes,
                    d.dtype,
                    d.shape.clone(),
                    &d.opts,
                )
            })
            .collect();
        file.pipeline()
            .write_many(&jobs)
            .map_err(|source| Error::Pipeline {
                path: match self.items.as_slice() {
                    [one] => join(&one.path, &one.name),
                    _ => format!("{} arrays", self.items.len()),
                },
                source: Box::new(source),
            })
    }
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
            Some(s) => read(None, &s.ds, &s.path, &s.field),
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
        let (scratch, _) = crate::ffi::file::in_memory_h5("h5pom-scratch")
            .ctx("create scratch file", String::new)?;
        let ds = scratch
            .new_dataset_builder()
            .with_data(&a.as_standard_layout())
            .create("a")
            .ctx("write scratch", String::new)?;
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
