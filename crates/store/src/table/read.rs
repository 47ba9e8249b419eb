//! Reading stored column tables, checked against damaged or hostile files: every declared
//! size is checked before anything is allocated for it.

use hdf5::types::{FloatSize, IntSize, TypeDescriptor as T, VarLenUnicode};
use hdf5::{Dataset, Group, H5Type};
use ndarray::IxDyn;

use crate::ctx::RowRef;
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::file::File;
use crate::name::join;
use crate::pipeline::Element;
use crate::value::Value;

use super::{NONE_SUFFIX, TableError};

/// Most rows a column may hold when read. A damaged or hostile file can declare 2^40 rows
/// at no cost on disk (a chunked dataset with no chunk written); reading them would allocate
/// and fill terabytes. 2^28 rows of `u64` ids are 2 GiB.
pub const MAX_ROWS: usize = 1 << 28;

fn table_err(path: &str, source: TableError) -> Error {
    Error::Table {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

/// Splits a flat list of numbers into lists of `width` items (the cells of a `[row, width]`
/// column).
pub(super) fn group_items(flat: Vec<Value>, width: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(flat.len() / width.max(1));
    let mut it = flat.into_iter();
    loop {
        let cell: Vec<Value> = it.by_ref().take(width).collect();
        if cell.is_empty() {
            return out;
        }
        out.push(Value::List(cell));
    }
}

/// The row count of a 1-D column (or of a `[row, width]` column of fixed-size arrays),
/// refused if above [`MAX_ROWS`].
fn column_rows(ds: &Dataset, path: &str, column: &str) -> Result<usize> {
    match ds.shape()[..] {
        [rows] | [rows, _] if rows <= MAX_ROWS => Ok(rows),
        [rows] | [rows, _] => Err(table_err(
            path,
            TableError::TooManyRows {
                column: column.to_owned(),
                rows,
            },
        )),
        ref shape => Err(table_err(
            path,
            TableError::Rank {
                column: column.to_owned(),
                rank: shape.len(),
            },
        )),
    }
}

/// Proves `rows` elements of `E` can be allocated (an error, not an abort, if not).
fn reserve<E>(rows: usize, path: &str, column: &str) -> Result<()> {
    let fits = rows
        .checked_mul(std::mem::size_of::<E>())
        .is_some_and(|bytes| bytes <= isize::MAX as usize)
        && Vec::<E>::new().try_reserve_exact(rows).is_ok();
    if fits {
        Ok(())
    } else {
        Err(table_err(
            path,
            TableError::NoMemory {
                column: column.to_owned(),
                rows,
            },
        ))
    }
}

/// Reads a numeric column through the file's pipeline (parallel decode, LZ4 and Zstd too);
/// a `[row, width]` column is read flat, row-major.
fn read_num<E: Element>(file: &File, ds: &Dataset, path: &str, column: &str) -> Result<Vec<E>> {
    let rows = column_rows(ds, path, column)?;
    let width = ds.shape().get(1).copied().unwrap_or(1);
    reserve::<E>(rows.saturating_mul(width), path, column)?;
    let a = file
        .inner()
        .pipeline()
        .read::<E, IxDyn>(ds)
        .map_err(|source| Error::Pipeline {
            path: join(path, column),
            source: Box::new(source),
        })?;
    Ok(a.into_raw_vec_and_offset().0)
}

/// Reads a column HDF5 converts (bool, strings, ids of a narrower type).
fn read_h5<E: H5Type>(ds: &Dataset, path: &str, column: &str) -> Result<Vec<E>> {
    let rows = column_rows(ds, path, column)?;
    reserve::<E>(rows, path, column)?;
    ds.read_raw().ctx("read column", || join(path, column))
}

/// Reads a column of persistent ids (a table's key column, an index): 1-D, of an unsigned
/// integer type (read as `u64` without loss), at most [`MAX_ROWS`] rows. Nothing is allocated
/// before all three are checked.
pub fn read_id_column(file: &File, ds: &Dataset, path: &str, column: &str) -> Result<Vec<u64>> {
    if ds.ndim() != 1 {
        return Err(table_err(
            path,
            TableError::Rank {
                column: column.to_owned(),
                rank: ds.ndim(),
            },
        ));
    }
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read column type", || join(path, column))?;
    match desc {
        T::Unsigned(IntSize::U8) => read_num::<u64>(file, ds, path, column),
        T::Unsigned(_) => read_h5::<u64>(ds, path, column),
        found => Err(table_err(
            path,
            TableError::Dtype {
                column: column.to_owned(),
                found: found.to_string(),
                expected: "an unsigned integer (ids)",
            },
        )),
    }
}

/// Reads only the key column `key` of the table in `group`.
pub fn read_keys(file: &File, group: &Group, path: &str, key: &str) -> Result<Vec<u64>> {
    let ds = group.dataset(key).ctx("open column", || join(path, key))?;
    read_id_column(file, &ds, path, key)
}

fn read_values(file: &File, ds: &Dataset, path: &str, name: &str) -> Result<Vec<Value>> {
    let flat = read_flat(file, ds, path, name)?;
    Ok(match ds.shape()[..] {
        [_, width] if width > 0 => group_items(flat, width),
        _ => flat,
    })
}

fn read_flat(file: &File, ds: &Dataset, path: &str, name: &str) -> Result<Vec<Value>> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read column type", || join(path, name))?;
    macro_rules! rd {
        ($t:ty, $variant:ident) => {
            read_num::<$t>(file, ds, path, name)?
                .into_iter()
                .map(Value::$variant)
                .collect()
        };
    }
    Ok(match desc {
        T::Boolean => read_h5::<bool>(ds, path, name)?
            .into_iter()
            .map(Value::Bool)
            .collect(),
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
        T::VarLenUnicode => read_h5::<VarLenUnicode>(ds, path, name)?
            .into_iter()
            .map(|s| Value::Str(s.as_str().to_owned()))
            .collect(),
        other => {
            return Err(table_err(
                path,
                TableError::Dtype {
                    column: name.to_owned(),
                    found: other.to_string(),
                    expected: "a number, bool or UTF-8 string",
                },
            ));
        }
    })
}

/// Reads the rows `runs` of a column (1-D, or `[row, width]` as lists of `width` items),
/// one hyperslab per run, through HDF5 (which decodes any filter it has registered).
fn read_runs(
    ds: &Dataset,
    path: &str,
    name: &str,
    runs: &[std::ops::Range<usize>],
) -> Result<Vec<Value>> {
    let here = || join(path, name);
    let width = match ds.shape()[..] {
        [_, w] => Some(w),
        _ => None,
    };
    let mut out = Vec::new();
    for r in runs {
        let sel = match width {
            Some(_) => hdf5::Selection::try_from(ndarray::s![r.clone(), ..]),
            None => hdf5::Selection::try_from(ndarray::s![r.clone()]),
        }
        .ctx("select rows", here)?;
        let flat = crate::series::read_selection(ds, here, sel)?;
        match width {
            Some(w) if w > 0 => out.extend(group_items(flat, w)),
            _ => out.extend(flat),
        }
    }
    Ok(out)
}

/// A table read back whole: the keys and, row-major, every row's values.
#[derive(Debug, Clone)]
pub struct StoredTable {
    /// The key of each row.
    pub keys: Vec<u64>,
    /// The field names (sorted).
    pub names: Vec<String>,
    /// Row-major values: row `i` is `values[i * names.len()..][..names.len()]`.
    pub values: Vec<Option<Value>>,
}

impl StoredTable {
    /// Row `i`, to read an object from with [`read_row`](crate::read_row).
    pub fn row(&mut self, i: usize) -> RowRef<'_> {
        let k = self.names.len();
        RowRef {
            names: &self.names,
            values: &mut self.values[i * k..(i + 1) * k],
        }
    }
}

/// Reads the whole table in `group` (at `path`, for errors) whose key column is `key`.
pub fn read_table(file: &File, group: &Group, path: &str, key: &str) -> Result<StoredTable> {
    let keys = read_keys(file, group, path, key)?;
    read_columns(file, group, path, key, keys, None)
}

/// Reads the rows of the table in `group` whose key is in `wanted` (sorted or not), in stored
/// order: the key column whole, then of every other column only the runs of consecutive rows
/// that hold a wanted key (the whole column when they are more than a quarter of the rows).
/// Keys not in the table are left out.
pub fn read_table_rows(
    file: &File,
    group: &Group,
    path: &str,
    key: &str,
    wanted: &std::collections::HashSet<u64>,
) -> Result<StoredTable> {
    let all = read_keys(file, group, path, key)?;
    let rows: Vec<usize> = (0..all.len())
        .filter(|&i| wanted.contains(&all[i]))
        .collect();
    if rows.len().saturating_mul(4) > all.len() {
        let mut t = read_columns(file, group, path, key, all, None)?;
        let k = t.names.len();
        let mut values = Vec::with_capacity(rows.len() * k);
        for &i in &rows {
            values.extend(t.values[i * k..(i + 1) * k].iter_mut().map(Option::take));
        }
        t.keys = rows.iter().map(|&i| t.keys[i]).collect();
        t.values = values;
        return Ok(t);
    }
    // Runs of consecutive rows: one hyperslab read each.
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &i in &rows {
        match runs.last_mut() {
            Some(r) if r.end == i => r.end += 1,
            _ => runs.push(i..i + 1),
        }
    }
    let keys = rows.iter().map(|&i| all[i]).collect();
    read_columns(file, group, path, key, keys, Some((all.len(), &runs)))
}

/// Reads the columns of the table in `group` for the rows of `keys`: every row, or (with
/// `runs`: the column length and the row ranges, whose lengths sum to `keys.len()`) only
/// those ranges.
fn read_columns(
    file: &File,
    group: &Group,
    path: &str,
    key: &str,
    keys: Vec<u64>,
    runs: Option<(usize, &[std::ops::Range<usize>])>,
) -> Result<StoredTable> {
    let n = keys.len();
    let stored = runs.map_or(n, |(rows, _)| rows);
    let mut names: Vec<String> = group
        .member_names()
        .ctx("list columns", || path.to_owned())?
        .into_iter()
        .filter(|m| m != key && !m.ends_with(NONE_SUFFIX))
        .collect();
    names.sort();
    let k = names.len();
    // Every column is checked to hold `n` rows before it is read, but the cells of all of
    // them are allocated here: refuse a count that cannot be.
    let cells = n.saturating_mul(k);
    let mut values: Vec<Option<Value>> = Vec::new();
    values.try_reserve_exact(cells).map_err(|_| {
        table_err(
            path,
            TableError::NoMemory {
                column: format!("{k} columns of"),
                rows: n,
            },
        )
    })?;
    values.resize(cells, None);
    let same_rows = |ds: &Dataset, column: &str| -> Result<()> {
        let rows = column_rows(ds, path, column)?;
        if rows != stored {
            return Err(table_err(
                path,
                TableError::RowCount {
                    column: column.to_owned(),
                    rows,
                    expected: stored,
                },
            ));
        }
        Ok(())
    };
    for (j, name) in names.iter().enumerate() {
        let ds = group
            .dataset(name)
            .ctx("open column", || join(path, name))?;
        same_rows(&ds, name)?;
        let col = match runs {
            None => read_values(file, &ds, path, name)?,
            Some((_, runs)) => read_runs(&ds, path, name, runs)?,
        };
        let mask_name = format!("{name}{NONE_SUFFIX}");
        let mask: Option<Vec<bool>> = if group.link_exists(&mask_name) {
            let m = group
                .dataset(&mask_name)
                .ctx("open column", || join(path, &mask_name))?;
            same_rows(&m, &mask_name)?;
            Some(match runs {
                None => match m.dtype().and_then(|t| t.to_descriptor()) {
                    Ok(T::Unsigned(IntSize::U1)) => read_num::<u8>(file, &m, path, &mask_name)?,
                    Ok(_) => read_h5::<u8>(&m, path, &mask_name)?,
                    Err(e) => {
                        return Err(Error::hdf5("read column type", join(path, &mask_name), e));
                    }
                }
                .into_iter()
                .map(|b| b != 0)
                .collect(),
                Some((_, runs)) => read_runs(&m, path, &mask_name, runs)?
                    .into_iter()
                    .map(|v| v.as_i128().is_some_and(|b| b != 0))
                    .collect(),
            })
        } else {
            None
        };
        if col.len() != n || mask.as_ref().is_some_and(|m| m.len() != n) {
            return Err(table_err(
                path,
                TableError::RowCount {
                    column: name.clone(),
                    rows: col.len(),
                    expected: n,
                },
            ));
        }
        for (i, v) in col.into_iter().enumerate() {
            let none = mask.as_ref().is_some_and(|m| m[i]);
            values[i * k + j] = Some(if none { Value::None } else { v });
        }
    }
    Ok(StoredTable {
        keys,
        names,
        values,
    })
}
