//! Column tables: one HDF5 group per component type, one 1-D dataset per field, plus the
//! `entity` column of persistent ids. Used for components with many instances and scalar
//! fields only, where a group per entity would cost one HDF5 call per field per entity.

use h5pom_store::reexports::hdf5::{self, Group, H5Type};
use h5pom_store::{Row, Value};

use crate::error::{EcsError, Result};
use crate::layout::{ENTITY_COLUMN, NONE_SUFFIX};

fn table_err(tag: &str, reason: impl Into<String>) -> EcsError {
    EcsError::Table {
        component: tag.to_owned(),
        reason: reason.into(),
    }
}

fn h5(tag: &str, what: &str, e: hdf5::Error) -> EcsError {
    table_err(tag, format!("{what}: {e}"))
}

fn column_err(tag: &str, what: &str, e: ColumnError) -> EcsError {
    table_err(tag, format!("column {what}: {e}"))
}

/// Most rows a table column or `/ecs/index` may hold when read. A damaged or hostile file can
/// declare 2^40 rows at no cost on disk (a chunked dataset with no chunk written); reading them
/// would allocate and fill terabytes. 2^28 rows of `u64` ids are 2 GiB.
pub(crate) const MAX_ROWS: usize = 1 << 28;

/// Why a stored column was refused. Every check runs before anything is allocated for it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ColumnError {
    /// The dataset is not 1-D.
    #[error("rank {rank}, expected a 1-D column")]
    Rank {
        /// Its rank.
        rank: usize,
    },
    /// The dataset declares more rows than a reader accepts.
    #[error("{rows} rows, more than the {MAX_ROWS} a reader accepts")]
    TooManyRows {
        /// The declared row count.
        rows: usize,
    },
    /// The rows are within [`MAX_ROWS`] but the allocation failed.
    #[error("{rows} rows do not fit in memory")]
    NoMemory {
        /// The declared row count.
        rows: usize,
    },
    /// The element type cannot be read as the expected one without loss.
    #[error("type {found}, expected {expected}")]
    Dtype {
        /// The stored type.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// libhdf5 failed.
    #[error(transparent)]
    Hdf5(#[from] hdf5::Error),
}

/// The row count of a 1-D column, refused if above [`MAX_ROWS`].
pub(crate) fn column_rows(ds: &hdf5::Dataset) -> Result<usize, ColumnError> {
    match ds.shape()[..] {
        [rows] if rows <= MAX_ROWS => Ok(rows),
        [rows] => Err(ColumnError::TooManyRows { rows }),
        ref shape => Err(ColumnError::Rank { rank: shape.len() }),
    }
}

/// Reads a whole 1-D column of at most [`MAX_ROWS`] rows, converted to `T` by libhdf5. The
/// allocation is tried first, so a failure is an error rather than an abort.
pub(crate) fn read_column<T: H5Type>(ds: &hdf5::Dataset) -> Result<Vec<T>, ColumnError> {
    let rows = column_rows(ds)?;
    let fits = rows
        .checked_mul(std::mem::size_of::<T>())
        .is_some_and(|bytes| bytes <= isize::MAX as usize)
        && Vec::<T>::new().try_reserve_exact(rows).is_ok();
    if !fits {
        return Err(ColumnError::NoMemory { rows });
    }
    Ok(ds.read_raw()?)
}

/// Reads a column of persistent ids (a table's `entity` column, `/ecs/index`): 1-D, of an
/// unsigned integer type (read as `u64` without loss), at most [`MAX_ROWS`] rows. Nothing is
/// allocated before all three are checked.
pub(crate) fn read_id_column(ds: &hdf5::Dataset) -> Result<Vec<u64>, ColumnError> {
    let desc = ds.dtype()?.to_descriptor()?;
    if !matches!(desc, hdf5::types::TypeDescriptor::Unsigned(_)) {
        return Err(ColumnError::Dtype {
            found: desc.to_string(),
            expected: "an unsigned integer (persistent ids)",
        });
    }
    read_column(ds)
}

/// Writes a 1-D column in place (resizing it) when its type matches, else replaces it.
pub(crate) fn write_column<T: H5Type>(g: &Group, tag: &str, name: &str, data: &[T]) -> Result<()> {
    let n = data.len();
    if g.link_exists(name) {
        let ds = g.dataset(name).map_err(|e| h5(tag, name, e))?;
        let same = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map(|d| d == T::type_descriptor())
            .unwrap_or(false);
        if same && ds.ndim() == 1 && ds.is_resizable() {
            if ds.shape() != [n] {
                ds.resize([n]).map_err(|e| h5(tag, name, e))?;
            }
            if n > 0 {
                ds.write_raw(data).map_err(|e| h5(tag, name, e))?;
            }
            return Ok(());
        }
        g.unlink(name).map_err(|e| h5(tag, name, e))?;
    }
    let chunk = h5pom_store::auto_chunk(&[n], std::mem::size_of::<T>());
    let ds = g
        .new_dataset::<T>()
        .shape([(n, None)])
        .chunk(chunk)
        .create(name)
        .map_err(|e| h5(tag, name, e))?;
    if n > 0 {
        ds.write_raw(data).map_err(|e| h5(tag, name, e))?;
    }
    Ok(())
}

/// Writes the table: the `entity` column and one column per field of `row` (row-major values).
pub(crate) fn write_table(g: &Group, tag: &str, ids: &[u64], row: &Row) -> Result<()> {
    let n = ids.len();
    let k = row.names.len();
    if row.values.len() != n * k {
        return Err(table_err(
            tag,
            format!("{} values for {n} rows of {k} fields", row.values.len()),
        ));
    }
    write_column(g, tag, ENTITY_COLUMN, ids)?;
    for (j, name) in row.names.iter().enumerate() {
        let col = || row.values.iter().skip(j).step_by(k.max(1));
        let has_none = col().any(|v| matches!(v, Value::None));
        if has_none {
            let mask: Vec<u8> = col().map(|v| u8::from(matches!(v, Value::None))).collect();
            write_column(g, tag, &format!("{name}{NONE_SUFFIX}"), &mask)?;
        } else if g.link_exists(&format!("{name}{NONE_SUFFIX}")) {
            g.unlink(&format!("{name}{NONE_SUFFIX}"))
                .map_err(|e| h5(tag, name, e))?;
        }
        let first = col().find(|v| !matches!(v, Value::None)).cloned();
        macro_rules! typed {
            ($variant:ident, $t:ty, $zero:expr) => {{
                let mut out: Vec<$t> = Vec::with_capacity(n);
                for v in col() {
                    match v {
                        Value::$variant(x) => out.push(x.clone()),
                        Value::None => out.push($zero),
                        other => {
                            return Err(table_err(
                                tag,
                                format!(
                                    "column {name} mixes {} with {}",
                                    stringify!($variant),
                                    other.type_name()
                                ),
                            ));
                        }
                    }
                }
                write_column(g, tag, name, &out)?
            }};
        }
        match first {
            None => typed!(I64, i64, 0),
            Some(Value::Bool(_)) => typed!(Bool, bool, false),
            Some(Value::I8(_)) => typed!(I8, i8, 0),
            Some(Value::I16(_)) => typed!(I16, i16, 0),
            Some(Value::I32(_)) => typed!(I32, i32, 0),
            Some(Value::I64(_)) => typed!(I64, i64, 0),
            Some(Value::U8(_)) => typed!(U8, u8, 0),
            Some(Value::U16(_)) => typed!(U16, u16, 0),
            Some(Value::U32(_)) => typed!(U32, u32, 0),
            Some(Value::U64(_)) => typed!(U64, u64, 0),
            Some(Value::F32(_)) => typed!(F32, f32, 0.0),
            Some(Value::F64(_)) => typed!(F64, f64, 0.0),
            Some(Value::Str(_)) => {
                let mut out = Vec::with_capacity(n);
                for v in col() {
                    let s = match v {
                        Value::Str(s) => s.as_str(),
                        Value::None => "",
                        other => {
                            return Err(table_err(
                                tag,
                                format!("column {name} mixes str with {}", other.type_name()),
                            ));
                        }
                    };
                    let s: hdf5::types::VarLenUnicode = s.parse().map_err(|_| {
                        table_err(tag, format!("column {name}: string with NUL byte"))
                    })?;
                    out.push(s);
                }
                write_column(g, tag, name, &out)?
            }
            Some(other) => {
                return Err(table_err(
                    tag,
                    format!(
                        "field {name} holds {}: only numbers, bool and strings (and Options of them) fit a table",
                        other.type_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A table read back: the entity ids and, row-major, every row's values.
pub(crate) struct Table {
    pub(crate) ids: Vec<u64>,
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<Option<Value>>,
}

fn read_values(g: &Group, tag: &str, name: &str, n: usize) -> Result<Vec<Value>> {
    use hdf5::types::{FloatSize, IntSize, TypeDescriptor as T};
    let ds = g.dataset(name).map_err(|e| h5(tag, name, e))?;
    if ds.shape() != [n] {
        return Err(table_err(
            tag,
            format!("column {name} has shape {:?}, expected [{n}]", ds.shape()),
        ));
    }
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| h5(tag, name, e))?;
    macro_rules! rd {
        ($t:ty, $variant:ident) => {
            read_column::<$t>(&ds)
                .map_err(|e| column_err(tag, name, e))?
                .into_iter()
                .map(Value::$variant)
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
        T::VarLenUnicode => read_column::<hdf5::types::VarLenUnicode>(&ds)
            .map_err(|e| column_err(tag, name, e))?
            .into_iter()
            .map(|s| Value::Str(s.as_str().to_owned()))
            .collect(),
        other => {
            return Err(table_err(
                tag,
                format!("column {name} has unsupported type {other}"),
            ));
        }
    })
}

/// Reads only the `entity` column of a table (checked: see [`read_id_column`]).
pub(crate) fn read_ids(g: &Group, tag: &str) -> Result<Vec<u64>> {
    let ds = g
        .dataset(ENTITY_COLUMN)
        .map_err(|e| h5(tag, ENTITY_COLUMN, e))?;
    read_id_column(&ds).map_err(|e| column_err(tag, ENTITY_COLUMN, e))
}

/// Reads a whole table.
pub(crate) fn read_table(g: &Group, tag: &str) -> Result<Table> {
    let ids = read_ids(g, tag)?;
    let n = ids.len();
    let mut names: Vec<String> = g
        .member_names()
        .map_err(|e| h5(tag, "list columns", e))?
        .into_iter()
        .filter(|m| m != ENTITY_COLUMN && !m.ends_with(NONE_SUFFIX))
        .collect();
    names.sort();
    let k = names.len();
    // Every column is checked to hold `n` rows before it is read, but the cells of all of
    // them are allocated here: refuse a count that cannot be.
    let cells = n
        .checked_mul(k)
        .ok_or_else(|| table_err(tag, format!("{n} rows x {k} columns overflow")))?;
    let mut values: Vec<Option<Value>> = Vec::new();
    values
        .try_reserve_exact(cells)
        .map_err(|_| table_err(tag, format!("{n} rows x {k} columns do not fit in memory")))?;
    values.resize(cells, None);
    for (j, name) in names.iter().enumerate() {
        let col = read_values(g, tag, name, n)?;
        let mask_name = format!("{name}{NONE_SUFFIX}");
        let mask: Option<Vec<u8>> = if g.link_exists(&mask_name) {
            let m = g.dataset(&mask_name).map_err(|e| h5(tag, &mask_name, e))?;
            let rows = column_rows(&m).map_err(|e| column_err(tag, &mask_name, e))?;
            if rows != n {
                return Err(table_err(
                    tag,
                    format!("mask {mask_name} has {rows} rows, expected {n}"),
                ));
            }
            Some(read_column::<u8>(&m).map_err(|e| column_err(tag, &mask_name, e))?)
        } else {
            None
        };
        for (i, v) in col.into_iter().enumerate() {
            let none = mask.as_ref().is_some_and(|m| m[i] != 0);
            values[i * k + j] = Some(if none { Value::None } else { v });
        }
    }
    Ok(Table { ids, names, values })
}
