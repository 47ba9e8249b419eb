//! A table's rows as one sample of a history: every column a `[sample, row]` frame series,
//! the keys a 1-D coordinate along `row`.

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Group, H5Type};

use crate::error::{Error, Hdf5ResultExt, Result};
use crate::file::File;
use crate::name::join;
use crate::pipeline::Dtype;
use crate::series::{VALUE_CHUNK, append_frame_only as append_frame};

use super::column::Cells;
use super::{ColumnTable, NONE_SUFFIX, TableError, chunk_rows};

/// What [`ColumnTable::append_frame`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameWrite {
    /// Datasets created by this frame (to attach dimension scales to): `[sample, row]`
    /// columns and masks, and the key coordinate on the first frame.
    pub created: Vec<String>,
    /// Chunks written.
    pub chunks: usize,
}

/// Chunk rows of the existing `[sample, row]` series `name`, or the table rule for `rows`.
fn frame_chunk(group: &Group, name: &str, rows: usize) -> usize {
    group
        .dataset(name)
        .ok()
        .and_then(|ds| ds.chunk())
        .and_then(|c| c.get(1).copied())
        .unwrap_or_else(|| chunk_rows(rows, 0))
}

/// Writes frame `index` of a bool or string column through libhdf5.
fn write_other_frame(
    group: &Group,
    path: &str,
    name: &str,
    index: usize,
    cells: &Cells,
    chunk: usize,
) -> Result<()> {
    let here = || join(path, name);
    let n = cells.len();
    fn open<T: H5Type>(
        group: &Group,
        name: &str,
        index: usize,
        n: usize,
        chunk: usize,
    ) -> hdf5::Result<Dataset> {
        if group.link_exists(name) {
            let ds = group.dataset(name)?;
            let shape = ds.shape();
            let want = [shape[0].max(index + 1), shape[1].max(n)];
            if shape != want {
                ds.resize(want)?;
            }
            Ok(ds)
        } else {
            group
                .new_dataset::<T>()
                .chunk([1, chunk])
                .shape([(index + 1, None), (n, None)])
                .create(name)
        }
    }
    match cells {
        Cells::Bool(v) => {
            let ds = open::<bool>(group, name, index, n, chunk).ctx("open series", here)?;
            let a = ndarray::ArrayView2::from_shape((1, n), v).map_err(|e| Error::Corrupt {
                path: here(),
                reason: e.to_string(),
            })?;
            ds.write_slice(a, ndarray::s![index..index + 1, 0..n])
                .ctx("append frame", here)
        }
        Cells::Str(v) => {
            let s: Vec<VarLenUnicode> = v
                .iter()
                .map(|s| s.parse::<VarLenUnicode>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::Table {
                    path: path.to_owned(),
                    source: Box::new(TableError::Nul {
                        column: name.to_owned(),
                    }),
                })?;
            let ds =
                open::<VarLenUnicode>(group, name, index, n, chunk).ctx("open series", here)?;
            let a = ndarray::ArrayView2::from_shape((1, n), &s).map_err(|e| Error::Corrupt {
                path: here(),
                reason: e.to_string(),
            })?;
            ds.write_slice(a, ndarray::s![index..index + 1, 0..n])
                .ctx("append frame", here)
        }
        _ => Ok(()),
    }
}

impl ColumnTable {
    /// Writes the rows as sample `index` of the history group `group` (at `path`): column `c`
    /// as frame `index` of the `[sample, row]` series `c`, its `None` mask as `<c>-none` (once
    /// some row was `None`: earlier samples read 0 there, "not None"), and the keys as the 1-D
    /// series `<key>` along `row` (grown when rows were added). Rows must only be appended
    /// between frames (never swap-removed): row `i` is the same object in every sample.
    pub fn append_frame(
        &mut self,
        file: &File,
        group: &Group,
        path: &str,
        index: usize,
    ) -> Result<FrameWrite> {
        let n = self.len();
        let mut out = FrameWrite::default();
        // The key coordinate: 1-D, grown by the new keys only.
        let key = self.key_name.clone();
        let here = || join(path, &key);
        let existing = if group.link_exists(&key) {
            Some(group.dataset(&key).ctx("open series", here)?)
        } else {
            None
        };
        let stored = existing.as_ref().map_or(0, |ds| ds.shape()[0]);
        let ds = match existing {
            Some(ds) => ds,
            None => {
                out.created.push(key.clone());
                group
                    .new_dataset::<u64>()
                    .chunk([VALUE_CHUNK])
                    .shape([(0, None)])
                    .create(key.as_str())
                    .ctx("create series", here)?
            }
        };
        if n > stored {
            ds.resize([n]).ctx("grow series", here)?;
            ds.write_slice(&self.keys[stored..], ndarray::s![stored..n])
                .ctx("write keys", here)?;
        }
        for col in &self.columns {
            let name = col.name.as_str();
            let created = !group.link_exists(name);
            let chunk = frame_chunk(group, name, n);
            match &col.cells {
                Cells::Num {
                    dtype,
                    width,
                    bytes,
                } => {
                    // A column of fixed-size arrays is a `[sample, row, width]` series.
                    let (shape, chunks) = match *width {
                        Some(k) => (vec![n, k], vec![chunk, k]),
                        None => (vec![n], vec![chunk]),
                    };
                    let w = append_frame(
                        file,
                        group,
                        path,
                        name,
                        index,
                        *dtype,
                        &shape,
                        bytes,
                        Some(&chunks),
                        false,
                    )?;
                    out.chunks += w.chunks;
                }
                // Every row so far is `None` (the mask says so): the column is created with
                // its type at its first value; earlier samples read 0 there, masked.
                Cells::Untyped(_) => {}
                other => {
                    write_other_frame(group, path, name, index, other, chunk)?;
                    out.chunks += n.div_ceil(chunk);
                }
            }
            if created && group.link_exists(name) {
                out.created.push(name.to_owned());
            }
            let mask_name = format!("{name}{NONE_SUFFIX}");
            let mask_exists = group.link_exists(&mask_name);
            if col.nones > 0 || mask_exists {
                let zeros;
                let m: &[u8] = match &col.mask {
                    Some(m) => m,
                    None => {
                        zeros = vec![0u8; n];
                        &zeros
                    }
                };
                let w = append_frame(
                    file,
                    group,
                    path,
                    &mask_name,
                    index,
                    Dtype::U8,
                    &[n],
                    m,
                    Some(&[chunk]),
                    false,
                )?;
                out.chunks += w.chunks;
                if !mask_exists {
                    out.created.push(mask_name);
                }
            }
        }
        Ok(out)
    }
}

/// Reads one row slice `[sample, ..]` of a `[sample, row]` column as values (libhdf5 decodes:
/// no filters, shuffle or deflate).
fn read_frame_values(
    ds: &Dataset,
    path: &str,
    name: &str,
    sample: usize,
) -> Result<Vec<crate::value::Value>> {
    let here = || join(path, name);
    let shape = ds.shape();
    if !(shape.len() == 2 || shape.len() == 3) || sample >= shape[0] {
        return Err(Error::Table {
            path: path.to_owned(),
            source: Box::new(TableError::Rank {
                column: name.to_owned(),
                rank: shape.len(),
            }),
        });
    }
    if shape[1] > super::MAX_ROWS {
        return Err(Error::Table {
            path: path.to_owned(),
            source: Box::new(TableError::TooManyRows {
                column: name.to_owned(),
                rows: shape[1],
            }),
        });
    }
    // Numeric frames are decoded by the pipeline (LZ4 and Zstd too); others through libhdf5.
    let dtype = ds
        .dtype()
        .map(|t| Dtype::from_datatype(&t))
        .ctx("read column type", here)?;
    let pipeline = crate::pipeline::Pipeline::new(crate::pipeline::Concurrency::Serial);
    let perr = |source| Error::Pipeline {
        path: here(),
        source: Box::new(source),
    };
    macro_rules! num {
        ($t:ty, $v:ident) => {
            pipeline
                .read_frame::<$t>(ds, sample)
                .map_err(perr)?
                .map(|v| v.into_iter().map(crate::value::Value::$v).collect())
        };
    }
    let decoded: Option<Vec<crate::value::Value>> = match dtype {
        Some(Dtype::I8) => num!(i8, I8),
        Some(Dtype::I16) => num!(i16, I16),
        Some(Dtype::I32) => num!(i32, I32),
        Some(Dtype::I64) => num!(i64, I64),
        Some(Dtype::U8) => num!(u8, U8),
        Some(Dtype::U16) => num!(u16, U16),
        Some(Dtype::U32) => num!(u32, U32),
        Some(Dtype::U64) => num!(u64, U64),
        Some(Dtype::F32) => num!(f32, F32),
        Some(Dtype::F64) => num!(f64, F64),
        None => None,
    };
    if let Some(v) = decoded {
        // `[sample, row, width]`: each row's cell is a list of `width` items.
        return Ok(match shape.get(2) {
            Some(&w) if w > 0 => super::read::group_items(v, w),
            _ => v,
        });
    }
    let sel = hdf5::Selection::try_from(ndarray::s![sample, ..]).ctx("select frame", here)?;
    crate::series::read_selection(ds, here, sel)
}

/// Reads sample `sample` of the history table in `group` (written by
/// [`ColumnTable::append_frame`]): the keys, and every column's row slice at that sample
/// (rows added after it read as their zero / `None`).
pub fn read_frame(
    file: &File,
    group: &Group,
    path: &str,
    key: &str,
    sample: usize,
) -> Result<super::StoredTable> {
    let keys_ds = group.dataset(key).ctx("open column", || join(path, key))?;
    let keys = super::read_id_column(file, &keys_ds, path, key)?;
    let n = keys.len();
    let mut names: Vec<String> = group
        .member_names()
        .ctx("list columns", || path.to_owned())?
        .into_iter()
        .filter(|m| {
            m != key
                && !m.ends_with(NONE_SUFFIX)
                && group.dataset(m).is_ok_and(|d| matches!(d.ndim(), 2 | 3))
        })
        .collect();
    names.sort();
    let k = names.len();
    let mut values: Vec<Option<crate::value::Value>> = vec![None; n.saturating_mul(k)];
    for (j, name) in names.iter().enumerate() {
        let ds = group
            .dataset(name)
            .ctx("open column", || join(path, name))?;
        let mut col = read_frame_values(&ds, path, name, sample)?;
        col.resize(n, crate::value::Value::None);
        let mask_name = format!("{name}{NONE_SUFFIX}");
        let mask: Option<Vec<crate::value::Value>> = if group.link_exists(&mask_name) {
            let m = group
                .dataset(&mask_name)
                .ctx("open column", || join(path, &mask_name))?;
            Some(read_frame_values(&m, path, &mask_name, sample)?)
        } else {
            None
        };
        for (i, v) in col.into_iter().take(n).enumerate() {
            let none = mask
                .as_ref()
                .and_then(|m| m.get(i))
                .is_some_and(|m| !matches!(m, crate::value::Value::U8(0)));
            values[i * k + j] = Some(if none { crate::value::Value::None } else { v });
        }
    }
    Ok(super::StoredTable {
        keys,
        names,
        values,
    })
}
