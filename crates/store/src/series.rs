//! Series: datasets that grow by one sample along a leading, unlimited axis, for histories.
//!
//! - A *frame* series (`[sample, ...frame]`) is chunked `[1, ...chunk]`: appending a frame
//!   writes only that frame's chunks, encoded by the parallel pipeline with the file's filters
//!   ([`append_frame`]). Frames may grow along their own axes (rows added to a table): the
//!   dataset grows with them, and cells no frame wrote read as zero.
//! - A *value* series (`[sample]`, one scalar per sample: steps, times, a resource's fields) is
//!   chunked [`VALUE_CHUNK`] samples and appended through libhdf5 ([`append_value`]).
//!
//! [`set_dimension_scale`] and [`attach_dimension_scale`] mark the axes with netCDF-4
//! dimension scales, so that xarray (h5netcdf) sees named dimensions and coordinates.

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Group, H5Type};

use crate::error::{Error, Hdf5ResultExt, Result};
use crate::file::File;
use crate::name::join;
use crate::pipeline::{Dtype, FrameJob, WriteStats};
use crate::value::Value;

/// Samples per chunk of a value series.
pub const VALUE_CHUNK: usize = 1024;

fn pipeline_err(path: &str, name: &str) -> impl FnOnce(crate::pipeline::PipelineError) -> Error {
    let here = join(path, name);
    move |source| Error::Pipeline {
        path: here,
        source: Box::new(source),
    }
}

/// Suffix of the series recording each frame's shape (`uint64 [sample, rank]`): frames may
/// differ in shape, the dataset holds the largest, and a frame is its shape's corner of it.
pub const SHAPE_SUFFIX: &str = "-shape";

/// Writes frame `index` of the frame series `name` in `group` (at `path`, for errors): `bytes`
/// (C order, native) of `dtype` and `frame_shape`, chunked `chunk` within the frame (`None`:
/// the whole frame up to the table chunk rule's 16,384 rows along the first frame axis). The
/// frame's shape is recorded as frame `index` of `<name>-shape`.
#[allow(clippy::too_many_arguments)]
pub fn append_frame(
    file: &File,
    group: &Group,
    path: &str,
    name: &str,
    index: usize,
    dtype: Dtype,
    frame_shape: &[usize],
    bytes: &[u8],
    chunk: Option<&[usize]>,
) -> Result<WriteStats> {
    let stats = append_frame_only(
        file,
        group,
        path,
        name,
        index,
        dtype,
        frame_shape,
        bytes,
        chunk,
        true,
    )?;
    let shape: Vec<u64> = frame_shape.iter().map(|&d| d as u64).collect();
    append_frame_only(
        file,
        group,
        path,
        &format!("{name}{SHAPE_SUFFIX}"),
        index,
        Dtype::U64,
        &[shape.len()],
        crate::pipeline::as_bytes(&shape),
        None,
        false,
    )?;
    Ok(stats)
}

/// The chunk shape (within a frame) an array of `shape` and `dtype` gets when written to
/// `file` as an ordinary dataset with the file's array options: the options' chunk if it has
/// the array's rank, else [`auto_chunk`](crate::pipeline::auto_chunk). Frames chunked this way
/// encode to the same chunks as the run file's copy of the array, which a sharing scope
/// ([`share_encoded_chunks`](crate::pipeline::share_encoded_chunks)) then encodes once.
pub fn array_chunk(file: &File, shape: &[usize], dtype: Dtype) -> Vec<usize> {
    match file.array_options().chunk {
        Some(c) if c.len() == shape.len() && !c.contains(&0) => c,
        _ => crate::pipeline::auto_chunk(shape, dtype.size()),
    }
}

/// [`append_frame`] without the shape record (table frames all have the table's shape),
/// publishing the encoded chunks in a sharing scope if `share` (an array's frame, which the
/// run file's copy of the array may take).
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_frame_only(
    file: &File,
    group: &Group,
    path: &str,
    name: &str,
    index: usize,
    dtype: Dtype,
    frame_shape: &[usize],
    bytes: &[u8],
    chunk: Option<&[usize]>,
    share: bool,
) -> Result<WriteStats> {
    let chunk: Vec<usize> = match chunk {
        Some(c) => c.to_vec(),
        None => frame_shape
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if i == 0 {
                    crate::table::chunk_rows(s, 0)
                } else {
                    s.max(1)
                }
            })
            .collect(),
    };
    let opts = file.array_options();
    let job = FrameJob {
        group,
        name,
        bytes,
        dtype,
        frame_shape: frame_shape.to_vec(),
        index,
        chunk,
        opts: &opts,
        share,
    };
    file.inner()
        .pipeline()
        .append_frame(&job)
        .map_err(pipeline_err(path, name))
}

fn open_value_series<T: H5Type>(
    group: &Group,
    path: &str,
    name: &str,
    len: usize,
) -> Result<Dataset> {
    let here = || join(path, name);
    if group.link_exists(name) {
        let ds = group.dataset(name).ctx("open series", here)?;
        let same = ds.dtype().and_then(|t| t.to_descriptor()).ok() == Some(T::type_descriptor())
            && ds.ndim() == 1;
        if !same {
            return Err(Error::TypeMismatch {
                path: path.to_owned(),
                field: name.to_owned(),
                expected: format!("a 1-D series of {}", T::type_descriptor()),
                found: format!("{:?}", ds.shape()),
            });
        }
        if ds.shape()[0] < len {
            ds.resize([len]).ctx("grow series", here)?;
        }
        Ok(ds)
    } else {
        group
            .new_dataset::<T>()
            .chunk([VALUE_CHUNK])
            .shape([(len, None)])
            .create(name)
            .ctx("create series", here)
    }
}

fn put<T: H5Type>(group: &Group, path: &str, name: &str, index: usize, v: T) -> Result<()> {
    let ds = open_value_series::<T>(group, path, name, index + 1)?;
    ds.write_slice(&[v], ndarray::s![index..index + 1])
        .ctx("append to series", || join(path, name))
}

/// Writes sample `index` of the value series `name` (numbers, `bool`, strings). `None` is
/// written as zero, or, while the series has no value yet, not at all (the first value creates
/// it with its type): keep a mask series beside it when it matters.
pub fn append_value(group: &Group, path: &str, name: &str, index: usize, v: &Value) -> Result<()> {
    match v {
        Value::Bool(x) => put(group, path, name, index, *x),
        Value::I8(x) => put(group, path, name, index, *x),
        Value::I16(x) => put(group, path, name, index, *x),
        Value::I32(x) => put(group, path, name, index, *x),
        Value::I64(x) => put(group, path, name, index, *x),
        Value::U8(x) => put(group, path, name, index, *x),
        Value::U16(x) => put(group, path, name, index, *x),
        Value::U32(x) => put(group, path, name, index, *x),
        Value::U64(x) => put(group, path, name, index, *x),
        Value::F32(x) => put(group, path, name, index, *x),
        Value::F64(x) => put(group, path, name, index, *x),
        Value::Str(s) => {
            let s: VarLenUnicode = s.parse().map_err(|_| Error::TypeMismatch {
                path: path.to_owned(),
                field: name.to_owned(),
                expected: "a string without NUL bytes".into(),
                found: "a NUL byte".into(),
            })?;
            put(group, path, name, index, s)
        }
        Value::None => {
            // Zero in a series that has a type; nothing at all before the first value (which
            // then creates the series with its own type, zeros before it).
            if group.link_exists(name) {
                let ds = group
                    .dataset(name)
                    .ctx("open series", || join(path, name))?;
                if ds.shape()[0] < index + 1 {
                    ds.resize([index + 1])
                        .ctx("grow series", || join(path, name))?;
                }
            }
            Ok(())
        }
        other => Err(Error::NotColumnar {
            path: path.to_owned(),
            field: format!("{name} ({})", other.type_name()),
        }),
    }
}

/// Cuts every series of `group` (its datasets whose leading axis is longer) to `len` samples.
pub fn truncate(group: &Group, path: &str, len: usize, series: &[&str]) -> Result<()> {
    for name in series {
        if !group.link_exists(name) {
            continue;
        }
        let ds = group
            .dataset(name)
            .ctx("open series", || join(path, name))?;
        let mut shape = ds.shape();
        if shape.first().is_some_and(|&n| n > len) {
            shape[0] = len;
            ds.resize(shape.as_slice())
                .ctx("truncate series", || join(path, name))?;
        }
    }
    Ok(())
}

/// Makes `ds` (1-D) the netCDF-4 dimension scale `name`: the coordinate of that dimension.
pub fn set_dimension_scale(ds: &Dataset, path: &str, name: &str) -> Result<()> {
    crate::ffi::scale::set_scale(ds, name).ctx("set dimension scale", || path.to_owned())
}

/// Attaches the dimension scale `scale` to axis `axis` of `ds` (nothing if attached already).
pub fn attach_dimension_scale(
    ds: &Dataset,
    path: &str,
    scale: &Dataset,
    axis: usize,
) -> Result<()> {
    crate::ffi::scale::attach_scale(ds, scale, axis)
        .ctx("attach dimension scale", || path.to_owned())
}

/// Reads a selection of `ds` as values, flat in row-major order (any number, `bool` or
/// string type).
pub(crate) fn read_selection(
    ds: &Dataset,
    here: impl Fn() -> String + Copy,
    sel: hdf5::Selection,
) -> Result<Vec<Value>> {
    use hdf5::types::{FloatSize, IntSize, TypeDescriptor as T};
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read series type", here)?;
    macro_rules! rd {
        ($t:ty, $v:ident) => {
            ds.read_slice::<$t, _, ndarray::IxDyn>(sel.clone())
                .ctx("read series", here)?
                .into_iter()
                .map(Value::$v)
                .collect()
        };
    }
    Ok(match desc {
        T::Boolean => rd!(bool, Bool),
        T::Integer(IntSize::U1) => rd!(i8, I8),
        T::Integer(IntSize::U2) => rd!(i16, I16),
        T::Integer(IntSize::U4) => rd!(i32, I32),
        T::Integer(IntSize::U8) => rd!(i64, I64),
        T::Unsigned(IntSize::U1) => rd!(u8, U8),
        T::Unsigned(IntSize::U2) => rd!(u16, U16),
        T::Unsigned(IntSize::U4) => rd!(u32, U32),
        T::Unsigned(IntSize::U8) => rd!(u64, U64),
        T::Float(FloatSize::U4) => rd!(f32, F32),
        T::Float(FloatSize::U8) => rd!(f64, F64),
        T::VarLenUnicode => ds
            .read_slice::<VarLenUnicode, _, ndarray::IxDyn>(sel)
            .ctx("read series", here)?
            .into_iter()
            .map(|s| Value::Str(s.as_str().to_owned()))
            .collect(),
        other => {
            return Err(Error::TypeMismatch {
                path: here(),
                field: String::new(),
                expected: "a series of numbers, bool or strings".into(),
                found: other.to_string(),
            });
        }
    })
}

/// Reads sample `index` of the value series `name` (any number, `bool` or string type).
pub fn read_value(group: &Group, path: &str, name: &str, index: usize) -> Result<Value> {
    let here = || join(path, name);
    let ds = group.dataset(name).ctx("open series", here)?;
    if ds.ndim() != 1 || index >= ds.shape()[0] {
        return Err(Error::NotFound {
            path: format!("{}[{index}]", here()),
        });
    }
    let mut v = read_selection(&ds, here, hdf5::Selection::from(index..index + 1))?;
    v.pop().ok_or_else(|| Error::NotFound { path: here() })
}

/// Reads column `row` of the `[sample, row]` series `name` over its first `samples` samples
/// (lazily: only that column is read). A row beyond the series' extent reads as nothing.
pub fn read_column(
    group: &Group,
    path: &str,
    name: &str,
    row: usize,
    samples: usize,
) -> Result<Vec<Value>> {
    let here = || join(path, name);
    let ds = group.dataset(name).ctx("open series", here)?;
    let shape = ds.shape();
    if shape.len() != 2 {
        return Err(Error::TypeMismatch {
            path: here(),
            field: name.to_owned(),
            expected: "a [sample, row] series".into(),
            found: format!("shape {shape:?}"),
        });
    }
    if row >= shape[1] {
        return Ok(Vec::new());
    }
    let n = samples.min(shape[0]);
    let sel = hdf5::Selection::try_from(ndarray::s![0..n, row]).ctx("select column", here)?;
    read_selection(&ds, here, sel)
}

/// Reads frame `sample` of the frame series `name` in `group` as an array of the frame's rank
/// (`Ok(None)` if there is no such series). The element type must match exactly; libhdf5
/// decodes (no filters, shuffle or deflate).
pub fn read_frame<T: crate::pipeline::Element, D: ndarray::Dimension>(
    group: &Group,
    path: &str,
    name: &str,
    sample: usize,
) -> Result<Option<ndarray::Array<T, D>>> {
    let here = || join(path, name);
    if !group.link_exists(name) {
        return Ok(None);
    }
    let ds = group.dataset(name).ctx("open series", here)?;
    let found = Dtype::from_datatype(&ds.dtype().ctx("read series type", here)?);
    let shape = ds.shape();
    let rank_ok = D::NDIM.is_none_or(|n| n + 1 == shape.len());
    if found != Some(T::DTYPE) || !rank_ok || shape.is_empty() {
        return Err(Error::TypeMismatch {
            path: path.to_owned(),
            field: name.to_owned(),
            expected: format!("a series of {} frames", T::DTYPE),
            found: format!("{found:?} of shape {shape:?}"),
        });
    }
    if sample >= shape[0] {
        return Err(Error::NotFound {
            path: format!("{}[{sample}]", here()),
        });
    }
    // Decoded by the pipeline when it can (one frame's chunks, LZ4 and Zstd too).
    let decoded = crate::pipeline::Pipeline::new(crate::pipeline::Concurrency::Serial)
        .read_frame::<T>(&ds, sample)
        .map_err(|source| Error::Pipeline {
            path: here(),
            source: Box::new(source),
        })?;
    let a: ndarray::ArrayD<T> = match decoded {
        Some(v) => {
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape[1..]), v).map_err(|e| {
                Error::Corrupt {
                    path: here(),
                    reason: e.to_string(),
                }
            })?
        }
        None => read_frame_hdf5(&ds, &shape, sample, here)?,
    };
    cut_to_recorded(group, path, name, sample, a)?
        .into_dimensionality::<D>()
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: here(),
            reason: e.to_string(),
        })
}

/// Reads frame `sample` through libhdf5's own filters.
fn read_frame_hdf5<T: crate::pipeline::Element>(
    ds: &Dataset,
    shape: &[usize],
    sample: usize,
    here: impl Fn() -> String + Copy,
) -> Result<ndarray::ArrayD<T>> {
    let mut elems = vec![ndarray::SliceInfoElem::Index(sample as isize)];
    elems.extend((1..shape.len()).map(|_| ndarray::SliceInfoElem::Slice {
        start: 0,
        end: None,
        step: 1,
    }));
    let info =
        ndarray::SliceInfo::<_, ndarray::IxDyn, ndarray::IxDyn>::try_from(elems).map_err(|e| {
            Error::Corrupt {
                path: here(),
                reason: e.to_string(),
            }
        })?;
    let sel = hdf5::Selection::try_from(info).ctx("select frame", here)?;
    ds.read_slice(sel).ctx("read frame", here)
}

/// `a` cut to the shape recorded for frame `sample` in `<name>-shape`, if there is one.
fn cut_to_recorded<T: Clone>(
    group: &Group,
    path: &str,
    name: &str,
    sample: usize,
    mut a: ndarray::ArrayD<T>,
) -> Result<ndarray::ArrayD<T>> {
    let here = || join(path, name);
    let shape_name = format!("{name}{SHAPE_SUFFIX}");
    if group.link_exists(&shape_name) {
        let ds = group
            .dataset(&shape_name)
            .ctx("open series", || join(path, &shape_name))?;
        let recorded: Vec<u64> =
            match crate::pipeline::Pipeline::new(crate::pipeline::Concurrency::Serial)
                .read_frame::<u64>(&ds, sample)
                .map_err(|source| Error::Pipeline {
                    path: join(path, &shape_name),
                    source: Box::new(source),
                })? {
                Some(v) => v,
                None => {
                    read_frame_hdf5::<u64>(&ds, &ds.shape(), sample, || join(path, &shape_name))?
                        .into_raw_vec_and_offset()
                        .0
                }
            };
        let dims: Vec<usize> = recorded
            .iter()
            .filter_map(|&d| usize::try_from(d).ok())
            .collect();
        if dims.len() != a.ndim() || dims.iter().zip(a.shape()).any(|(d, s)| d > s) {
            return Err(Error::Corrupt {
                path: here(),
                reason: format!("frame shape {dims:?} does not fit {:?}", a.shape()),
            });
        }
        a = a
            .slice_each_axis(|ax| ndarray::Slice::from(0..dims[ax.axis.index()]))
            .to_owned();
    }
    Ok(a)
}
