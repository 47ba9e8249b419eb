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

/// The values of one column as read: typed for 1-D numbers, `bool` and strings, as
/// [`Value`]s otherwise (`[row, width]` columns: one list per row; runs of rows).
#[derive(Debug, Clone)]
pub enum ColumnValues {
    /// `bool`.
    Bool(Vec<bool>),
    /// `int8`.
    I8(Vec<i8>),
    /// `int16`.
    I16(Vec<i16>),
    /// `int32`.
    I32(Vec<i32>),
    /// `int64`.
    I64(Vec<i64>),
    /// `uint8`.
    U8(Vec<u8>),
    /// `uint16`.
    U16(Vec<u16>),
    /// `uint32`.
    U32(Vec<u32>),
    /// `uint64`.
    U64(Vec<u64>),
    /// `float32`.
    F32(Vec<f32>),
    /// `float64`.
    F64(Vec<f64>),
    /// UTF-8 strings.
    Str(Vec<String>),
    /// Anything else, one value per row.
    Values(Vec<Value>),
}

impl ColumnValues {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Bool(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Str(v) => v.len(),
            Self::Values(v) => v.len(),
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as a value (`i` below [`len`](Self::len)).
    pub fn value(&self, i: usize) -> Value {
        match self {
            Self::Bool(v) => Value::Bool(v[i]),
            Self::I8(v) => Value::I8(v[i]),
            Self::I16(v) => Value::I16(v[i]),
            Self::I32(v) => Value::I32(v[i]),
            Self::I64(v) => Value::I64(v[i]),
            Self::U8(v) => Value::U8(v[i]),
            Self::U16(v) => Value::U16(v[i]),
            Self::U32(v) => Value::U32(v[i]),
            Self::U64(v) => Value::U64(v[i]),
            Self::F32(v) => Value::F32(v[i]),
            Self::F64(v) => Value::F64(v[i]),
            Self::Str(v) => Value::Str(v[i].clone()),
            Self::Values(v) => v[i].clone(),
        }
    }

    /// Every row as a value, in order.
    fn into_values(self) -> Vec<Value> {
        fn all<T>(v: Vec<T>, f: impl Fn(T) -> Value) -> Vec<Value> {
            v.into_iter().map(f).collect()
        }
        match self {
            Self::Bool(v) => all(v, Value::Bool),
            Self::I8(v) => all(v, Value::I8),
            Self::I16(v) => all(v, Value::I16),
            Self::I32(v) => all(v, Value::I32),
            Self::I64(v) => all(v, Value::I64),
            Self::U8(v) => all(v, Value::U8),
            Self::U16(v) => all(v, Value::U16),
            Self::U32(v) => all(v, Value::U32),
            Self::U64(v) => all(v, Value::U64),
            Self::F32(v) => all(v, Value::F32),
            Self::F64(v) => all(v, Value::F64),
            Self::Str(v) => all(v, Value::Str),
            Self::Values(v) => v,
        }
    }
}

/// Reads a whole column, typed (see [`ColumnValues`]).
fn read_typed(file: &File, ds: &Dataset, path: &str, name: &str) -> Result<ColumnValues> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx("read column type", || join(path, name))?;
    if let [_, width] = ds.shape()[..]
        && width > 0
    {
        // Fixed-size arrays: one list of `width` items per row.
        let flat = read_typed_flat(file, ds, path, name, &desc)?.into_values();
        return Ok(ColumnValues::Values(group_items(flat, width)));
    }
    read_typed_flat(file, ds, path, name, &desc)
}

fn read_typed_flat(
    file: &File,
    ds: &Dataset,
    path: &str,
    name: &str,
    desc: &T,
) -> Result<ColumnValues> {
    use ColumnValues as C;
    Ok(match desc {
        T::Boolean => C::Bool(read_h5::<bool>(ds, path, name)?),
        T::Integer(IntSize::U1) => C::I8(read_num(file, ds, path, name)?),
        T::Integer(IntSize::U2) => C::I16(read_num(file, ds, path, name)?),
        T::Integer(IntSize::U4) => C::I32(read_num(file, ds, path, name)?),
        T::Integer(IntSize::U8) => C::I64(read_num(file, ds, path, name)?),
        T::Unsigned(IntSize::U1) => C::U8(read_num(file, ds, path, name)?),
        T::Unsigned(IntSize::U2) => C::U16(read_num(file, ds, path, name)?),
        T::Unsigned(IntSize::U4) => C::U32(read_num(file, ds, path, name)?),
        T::Unsigned(IntSize::U8) => C::U64(read_num(file, ds, path, name)?),
        T::Float(FloatSize::U4) => C::F32(read_num(file, ds, path, name)?),
        T::Float(FloatSize::U8) => C::F64(read_num(file, ds, path, name)?),
        T::VarLenUnicode => C::Str(
            read_h5::<VarLenUnicode>(ds, path, name)?
                .into_iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        ),
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

/// The value columns of the table in `group` (every member but the key column `key` and the
/// masks), sorted.
fn column_names(group: &Group, path: &str, key: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = group
        .member_names()
        .ctx("list columns", || path.to_owned())?
        .into_iter()
        .filter(|m| m != key && !m.ends_with(NONE_SUFFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// One column read back: its values and its `None` mask (1 = None), both of `n` rows.
#[derive(Debug, Clone)]
pub struct ReadColumn {
    /// The values (a `None` row holds the column's placeholder).
    pub values: ColumnValues,
    /// Which rows are `None` (no mask: none is).
    pub none: Option<Vec<bool>>,
}

impl ReadColumn {
    /// Row `i`: [`Value::None`] where the mask says so.
    pub fn value(&self, i: usize) -> Value {
        if self.none.as_ref().is_some_and(|m| m[i]) {
            Value::None
        } else {
            self.values.value(i)
        }
    }
}

/// Reads column `name` of the table in `group` and its mask, for `n` rows: all of the column
/// (which must hold `stored` rows), or with `runs` only those row ranges.
fn read_column(
    file: &File,
    group: &Group,
    path: &str,
    name: &str,
    n: usize,
    stored: usize,
    runs: Option<&[std::ops::Range<usize>]>,
) -> Result<ReadColumn> {
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
    let ds = group
        .dataset(name)
        .ctx("open column", || join(path, name))?;
    same_rows(&ds, name)?;
    let values = match runs {
        None => read_typed(file, &ds, path, name)?,
        Some(runs) => ColumnValues::Values(read_runs(&ds, path, name, runs)?),
    };
    let mask_name = format!("{name}{NONE_SUFFIX}");
    let none: Option<Vec<bool>> = if group.link_exists(&mask_name) {
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
            Some(runs) => read_runs(&m, path, &mask_name, runs)?
                .into_iter()
                .map(|v| v.as_i128().is_some_and(|b| b != 0))
                .collect(),
        })
    } else {
        None
    };
    if values.len() != n || none.as_ref().is_some_and(|m| m.len() != n) {
        return Err(table_err(
            path,
            TableError::RowCount {
                column: name.to_owned(),
                rows: values.len(),
                expected: n,
            },
        ));
    }
    Ok(ReadColumn { values, none })
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
    let names = column_names(group, path, key)?;
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
    for (j, name) in names.iter().enumerate() {
        let col = read_column(file, group, path, name, n, stored, runs.map(|r| r.1))?;
        let none = col.none;
        for (i, v) in col.values.into_values().into_iter().enumerate() {
            let is_none = none.as_ref().is_some_and(|m| m[i]);
            values[i * k + j] = Some(if is_none { Value::None } else { v });
        }
    }
    Ok(StoredTable {
        keys,
        names,
        values,
    })
}

/// A table read back whole, column by column (see [`read_table_columns`]).
#[derive(Debug, Clone)]
pub struct TableColumns {
    /// The key of each row.
    pub keys: Vec<u64>,
    /// The field names (sorted).
    pub names: Vec<String>,
    /// The columns, in `names` order.
    pub columns: Vec<ReadColumn>,
}

impl TableColumns {
    /// Fills `out` (one cell per column) with row `i`, to read an object from with
    /// [`read_row`](crate::read_row) (as a [`RowRef`] over `names` and `out`).
    pub fn fill_row(&self, i: usize, out: &mut [Option<Value>]) {
        for (cell, col) in out.iter_mut().zip(&self.columns) {
            *cell = Some(col.value(i));
        }
    }
}

/// [`read_table`] column by column: each column keeps its stored type (numbers, `bool` and
/// strings are not turned into [`Value`]s until [`TableColumns::fill_row`] asks for a row),
/// so a large table costs its stored size in memory, not one `Value` per cell.
pub fn read_table_columns(
    file: &File,
    group: &Group,
    path: &str,
    key: &str,
) -> Result<TableColumns> {
    let keys = read_keys(file, group, path, key)?;
    let n = keys.len();
    let names = column_names(group, path, key)?;
    let columns = names
        .iter()
        .map(|name| read_column(file, group, path, name, n, n, None))
        .collect::<Result<Vec<_>>>()?;
    Ok(TableColumns {
        keys,
        names,
        columns,
    })
}
