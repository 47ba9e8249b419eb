//! Column tables: many objects of one type whose fields are all scalars, stored as one 1-D
//! dataset per field plus a key column, instead of one group per object.
//!
//! A [`ColumnTable`] is the in-memory mirror of one stored table. Rows are set, appended and
//! removed in memory; [`ColumnTable::write`] then writes only the chunks that hold changed
//! rows, numeric columns through the file's parallel array pipeline (so they are compressed
//! like array fields). Layout (see `docs/FORMAT.md`, "Column tables"):
//!
//! - one 1-D dataset per field, named after the field, chunked along rows
//!   ([`chunk_rows`]), every row of every column belonging to the same object;
//! - the key column (a name the caller chooses, `uint64`), e.g. the entities' persistent ids;
//! - `<field>-none` (`uint8`, 1 = `None`), present only while some row of `<field>` is `None`;
//!   a `None` cell holds zero (or `false`, or the empty string).
//!
//! **Row order.** Rows are in no meaningful order. A new object's row is appended; a removed
//! object's row is replaced by the last row (swap-remove), so the table stays dense and a
//! removal rewrites at most two chunks per column. Readers pair rows by index across columns
//! and identify objects by the key column, never by row number.

mod column;
mod frame;
mod read;

use hdf5::Group;

use crate::error::{Error, Result};
use crate::file::File;
use crate::name::join;
use crate::pipeline::{ArrayOptions, Dtype, WriteJob, as_bytes};
use crate::value::Value;

use column::{Cells, Column};
pub use frame::{FrameWrite, read_frame};
pub use read::{
    ColumnValues, MAX_ROWS, ReadColumn, StoredTable, TableColumns, read_id_column, read_keys,
    read_table, read_table_columns, read_table_rows,
};

/// Suffix of a column's `None` mask: `<field>-none`.
pub const NONE_SUFFIX: &str = "-none";
/// The fewest rows per chunk a table uses.
pub const MIN_CHUNK_ROWS: usize = 256;
/// The most rows per chunk a table uses: a changed row rewrites at most this many rows of
/// each changed column (128 KiB of `float64`).
pub const MAX_CHUNK_ROWS: usize = 16384;

/// Rows per chunk for a table of `rows` rows that used `current` (0 = none yet): the next
/// power of two of `rows` within [[`MIN_CHUNK_ROWS`], [`MAX_CHUNK_ROWS`]], kept while the table
/// has at most 16 chunks more than that (so a table whose size hovers around a power of two
/// does not change chunk shape, which rewrites it whole), and never shrunk.
pub fn chunk_rows(rows: usize, current: usize) -> usize {
    let fresh = rows
        .max(1)
        .next_power_of_two()
        .clamp(MIN_CHUNK_ROWS, MAX_CHUNK_ROWS);
    if current == 0 {
        return fresh;
    }
    if current < MAX_CHUNK_ROWS && rows > current.saturating_mul(16) {
        return fresh.max(current);
    }
    current
}

/// Why a table operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A value that no column can hold (a list, a date, an unsupported stored type).
    #[error("column {column}: a {found} value does not fit a table column")]
    NotColumnar {
        /// The column.
        column: String,
        /// The value's type.
        found: String,
    },
    /// A value of another type than the column's.
    #[error("column {column} holds {stored}, got {found}")]
    MixedTypes {
        /// The column.
        column: String,
        /// The column's type.
        stored: String,
        /// The value's type.
        found: String,
    },
    /// A row with other fields than the table's.
    #[error("row has fields {found:?}, the table has {expected:?}")]
    Fields {
        /// The table's fields.
        expected: Vec<String>,
        /// The row's fields.
        found: Vec<String>,
    },
    /// A row index past the end.
    #[error("row {row} of a table of {rows} rows")]
    NoRow {
        /// The index.
        row: usize,
        /// The table's row count.
        rows: usize,
    },
    /// A stored column that is not 1-D.
    #[error("column {column}: rank {rank}, expected a 1-D column (or `[row, n]` of arrays)")]
    Rank {
        /// The column.
        column: String,
        /// Its rank.
        rank: usize,
    },
    /// A stored column declares more rows than a reader accepts.
    #[error("column {column}: {rows} rows, more than the {MAX_ROWS} a reader accepts")]
    TooManyRows {
        /// The column.
        column: String,
        /// The declared row count.
        rows: usize,
    },
    /// The rows are within [`MAX_ROWS`] but do not fit in memory.
    #[error("column {column}: {rows} rows do not fit in memory")]
    NoMemory {
        /// The column.
        column: String,
        /// The declared row count.
        rows: usize,
    },
    /// A stored column of another length than the key column.
    #[error("column {column} has {rows} rows, the key column {expected}")]
    RowCount {
        /// The column.
        column: String,
        /// Its rows.
        rows: usize,
        /// The key column's rows.
        expected: usize,
    },
    /// A stored column whose element type is not what it must be.
    #[error("column {column}: type {found}, expected {expected}")]
    Dtype {
        /// The column.
        column: String,
        /// The stored type.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A string with a NUL byte (HDF5 strings cannot hold one).
    #[error("column {column}: a string holds a NUL byte")]
    Nul {
        /// The column.
        column: String,
    },
}

/// What one [`ColumnTable::write`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableWrite {
    /// Datasets written (columns, the key column and masks), wholly or in part.
    pub columns: usize,
    /// Chunks written (numeric chunks through the pipeline, plus string and bool row ranges
    /// of one chunk each).
    pub chunks: usize,
    /// Bytes handed to HDF5 for numeric columns (after compression).
    pub bytes_stored: u64,
    /// True if the table was written whole (first write, new chunk shape, after an error).
    pub whole: bool,
}

/// The in-memory mirror of a stored column table (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct ColumnTable {
    key_name: String,
    keys: Vec<u64>,
    key_dirty: Vec<usize>,
    columns: Vec<Column>,
    /// Rows per chunk in the file (0: not chosen yet).
    chunk_rows: usize,
    /// The file holds the table as it was at the last write (plus nothing else): only what
    /// changed since needs writing.
    synced: bool,
    /// Rows in the file after the last write.
    stored_rows: usize,
    /// Which masks exist in the file (per column).
    masks_stored: Vec<bool>,
}

impl ColumnTable {
    /// An empty table whose key column is `key` (`uint64`).
    pub fn new(key: &str) -> Self {
        ColumnTable {
            key_name: key.to_owned(),
            keys: Vec::new(),
            key_dirty: Vec::new(),
            columns: Vec::new(),
            chunk_rows: 0,
            synced: false,
            stored_rows: 0,
            masks_stored: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of every row, in row order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The field (column) names, empty until the first row.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// Value of column `col` in row `row` (`None` if out of range).
    pub fn value(&self, row: usize, col: usize) -> Option<Value> {
        let c = self.columns.get(col)?;
        (row < self.len()).then(|| c.value(row))
    }

    /// True if a [`write`](Self::write) has anything to write.
    pub fn is_dirty(&self) -> bool {
        !self.synced
            || self.stored_rows != self.len()
            || !self.key_dirty.is_empty()
            || self
                .columns
                .iter()
                .any(|c| c.whole || !c.dirty.is_empty() || !c.mask_dirty.is_empty())
            || self
                .columns
                .iter()
                .zip(&self.masks_stored)
                .any(|(c, &m)| (c.nones > 0) != m)
    }

    /// Forgets what the file holds: the next write writes every column whole.
    pub fn invalidate(&mut self) {
        self.synced = false;
    }

    /// An empty table whose key column is `key` and whose fields are `names` (so that even
    /// an empty table is written with its columns).
    pub fn with_fields(key: &str, names: &[String]) -> Self {
        let mut t = ColumnTable::new(key);
        t.columns = names.iter().map(|n| Column::new(n.clone())).collect();
        t.masks_stored = vec![false; names.len()];
        t
    }

    /// Removes every row, keeping the fields (the next write writes the table whole).
    pub fn clear(&mut self) {
        let names: Vec<String> = self.columns.iter().map(|c| c.name.clone()).collect();
        *self = ColumnTable::with_fields(&self.key_name, &names);
    }

    /// Checks that a row of `names` fits the table (the first row sets the columns) and, if
    /// `cells`, that every value fits its column.
    fn check_row(
        &mut self,
        names: &[String],
        values: &[Value],
        cells: bool,
    ) -> Result<(), TableError> {
        let fields = || TableError::Fields {
            expected: self.columns.iter().map(|c| c.name.clone()).collect(),
            found: names.to_vec(),
        };
        if names.len() != values.len() {
            return Err(fields());
        }
        if self.keys.is_empty() && self.columns.iter().map(|c| &c.name).ne(names) {
            self.columns = names.iter().map(|n| Column::new(n.clone())).collect();
            self.masks_stored = vec![false; names.len()];
            return Ok(());
        }
        if self.columns.len() != names.len()
            || self.columns.iter().zip(names).any(|(c, n)| c.name != *n)
        {
            return Err(fields());
        }
        if cells {
            // Check every cell before changing any, so a refused row leaves the table as it
            // was.
            for (c, v) in self.columns.iter().zip(values) {
                c.accepts(v)?;
            }
        }
        Ok(())
    }

    /// Appends a row with key `key` and the given fields (`names` as recorded by
    /// [`Row`](crate::Row)); returns its index.
    pub fn push(
        &mut self,
        key: u64,
        names: &[String],
        values: &[Value],
    ) -> Result<usize, TableError> {
        // Once every column has its type, a cell that does not fit is found by `set_row`
        // and the row is taken back out, which leaves the table as it was: the cells need
        // no check of their own first.
        let typed = !self.keys.is_empty() && self.columns.iter().all(Column::is_typed);
        self.check_row(names, values, !typed)?;
        let i = self.keys.len();
        // A row past the stored ones is in the tail the next write writes whole: nothing to
        // record (a row that fills the place of one removed since is recorded).
        let track = i < self.stored_rows;
        for c in &mut self.columns {
            c.push_zero();
        }
        for (c, v) in self.columns.iter_mut().zip(values) {
            if let Err(e) = c.set_row(i, v, track) {
                for c in &mut self.columns {
                    c.swap_remove(i);
                }
                return Err(e);
            }
        }
        self.keys.push(key);
        if track {
            self.key_dirty.push(i);
        }
        Ok(i)
    }

    /// Replaces the fields of row `row`; only cells whose stored bytes change are written by
    /// the next [`write`](Self::write).
    pub fn set(
        &mut self,
        row: usize,
        names: &[String],
        values: &[Value],
    ) -> Result<(), TableError> {
        if row >= self.len() {
            return Err(TableError::NoRow {
                row,
                rows: self.len(),
            });
        }
        self.check_row(names, values, true)?;
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.set(row, v)?;
        }
        Ok(())
    }

    /// Removes row `row` by moving the last row into it. Returns the key of the row now at
    /// `row` (the moved one), or `None` if `row` was the last row or out of range.
    pub fn swap_remove(&mut self, row: usize) -> Option<u64> {
        if row >= self.len() {
            return None;
        }
        self.keys.swap_remove(row);
        for c in &mut self.columns {
            c.swap_remove(row);
        }
        let moved = self.keys.get(row).copied();
        if moved.is_some() {
            self.key_dirty.push(row);
        }
        moved
    }

    /// Writes the table into `group` (at `path`, for errors): the chunks holding changed,
    /// appended or moved rows, or everything if the file's copy is not known to match
    /// (first write, a chunk shape change, a failed write). On error the next write is whole.
    pub fn write(&mut self, file: &File, group: &Group, path: &str) -> Result<TableWrite> {
        let r = self.write_inner(file, group, path);
        match &r {
            Ok(_) => {
                self.synced = true;
                self.stored_rows = self.len();
                self.key_dirty.clear();
                for c in &mut self.columns {
                    c.dirty.clear();
                    c.mask_dirty.clear();
                    c.whole = false;
                }
            }
            Err(_) => self.synced = false,
        }
        r
    }

    fn write_inner(&mut self, file: &File, group: &Group, path: &str) -> Result<TableWrite> {
        let n = self.len();
        let c = chunk_rows(n, self.chunk_rows);
        if c != self.chunk_rows {
            self.chunk_rows = c;
            self.synced = false;
        }
        let whole = !self.synced;
        let mut out = TableWrite {
            whole,
            ..TableWrite::default()
        };
        // Chunks of rows appended (or of a shrunk tail) since the last write.
        let tail: Vec<usize> = if whole || n <= self.stored_rows {
            Vec::new()
        } else {
            (self.stored_rows / c..n.div_ceil(c)).collect()
        };
        let chunks_of = |dirty: &[usize]| -> Vec<usize> {
            let mut v: Vec<usize> = dirty
                .iter()
                .filter(|&&r| r < n)
                .map(|&r| r / c)
                .chain(tail.iter().copied())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut opts = file.array_options();
        opts.chunk = Some(vec![c]);
        let opts: ArrayOptions = opts;

        // Numeric columns (key, numbers, masks) go through the pipeline in one pass.
        struct Num<'a> {
            name: String,
            bytes: std::borrow::Cow<'a, [u8]>,
            dtype: Dtype,
            /// `Some(n)`: a `[row, n]` column of fixed-size arrays.
            width: Option<usize>,
            chunks: Option<Vec<usize>>,
        }
        let mut nums: Vec<Num<'_>> = Vec::new();
        let mut others: Vec<(usize, Option<Vec<usize>>)> = Vec::new();
        let key_chunks = (!whole).then(|| chunks_of(&self.key_dirty));
        nums.push(Num {
            name: self.key_name.clone(),
            bytes: std::borrow::Cow::Borrowed(as_bytes(&self.keys)),
            dtype: Dtype::U64,
            width: None,
            chunks: key_chunks,
        });
        let mut unlink: Vec<String> = Vec::new();
        for (j, col) in self.columns.iter().enumerate() {
            let chunks = (!(whole || col.whole)).then(|| chunks_of(&col.dirty));
            match &col.cells {
                Cells::Untyped(len) => nums.push(Num {
                    name: col.name.clone(),
                    bytes: std::borrow::Cow::Owned(vec![0; len * 8]),
                    dtype: Dtype::I64,
                    width: None,
                    chunks: chunks.clone(),
                }),
                Cells::Num {
                    dtype,
                    width,
                    bytes,
                } => nums.push(Num {
                    name: col.name.clone(),
                    bytes: std::borrow::Cow::Borrowed(bytes),
                    dtype: *dtype,
                    width: *width,
                    chunks: chunks.clone(),
                }),
                Cells::Bool(_) | Cells::Str(_) => others.push((j, chunks.clone())),
            }
            let mask_name = format!("{}{NONE_SUFFIX}", col.name);
            match &col.mask {
                Some(m) if col.nones > 0 => nums.push(Num {
                    name: mask_name,
                    bytes: std::borrow::Cow::Borrowed(m),
                    dtype: Dtype::U8,
                    width: None,
                    chunks: (!(whole || col.whole) && self.masks_stored[j])
                        .then(|| chunks_of(&col.mask_dirty)),
                }),
                _ if self.masks_stored[j] || whole => unlink.push(mask_name),
                _ => {}
            }
        }
        // Array columns are chunked `[c, width]`: one chunk per row range, as 1-D columns.
        let wide_opts: Vec<ArrayOptions> = nums
            .iter()
            .map(|x| {
                let mut o = opts.clone();
                if let Some(w) = x.width {
                    o.chunk = Some(vec![c, w]);
                }
                o
            })
            .collect();
        let jobs: Vec<WriteJob<'_>> = nums
            .iter()
            .zip(&wide_opts)
            .map(|(x, o)| {
                let shape = match x.width {
                    Some(w) => vec![n, w],
                    None => vec![n],
                };
                let job = WriteJob::from_bytes(group, &x.name, &x.bytes, x.dtype, shape, o);
                match &x.chunks {
                    Some(ch) => job.only_chunks(ch),
                    None => job,
                }
            })
            .collect();
        let written_cols = jobs
            .iter()
            .zip(&nums)
            .filter(|(_, x)| x.chunks.as_ref().is_none_or(|ch| !ch.is_empty()))
            .count();
        let stats = file
            .inner()
            .pipeline()
            .write_many(&jobs)
            .map_err(|source| Error::Pipeline {
                path: join(path, &self.key_name),
                source: Box::new(source),
            })?;
        out.columns += written_cols;
        out.chunks += stats.chunks;
        out.bytes_stored += stats.bytes_stored;
        for (j, chunks) in others {
            let col = &self.columns[j];
            let written = write_other(group, path, col, c, chunks.as_deref())?;
            if written > 0 {
                out.columns += 1;
                out.chunks += written;
            }
        }
        for name in unlink {
            if group.link_exists(&name) {
                group
                    .unlink(&name)
                    .map_err(|e| Error::hdf5("delete column", join(path, &name), e))?;
            }
        }
        for (j, col) in self.columns.iter().enumerate() {
            self.masks_stored[j] = col.nones > 0;
        }
        Ok(out)
    }
}

/// Writes a bool or string column (HDF5 converts these; they bypass the pipeline): the
/// chunks in `chunks` if the dataset can be reused, else the whole column. Returns the number
/// of chunks written (whole column: its chunk count).
fn write_other(
    group: &Group,
    path: &str,
    col: &Column,
    chunk: usize,
    chunks: Option<&[usize]>,
) -> Result<usize> {
    use hdf5::types::VarLenUnicode;
    let here = || join(path, &col.name);
    let h5 = |op: &'static str| move |e: hdf5::Error| Error::hdf5(op, join(path, &col.name), e);
    let n = col.cells.len();
    let strings: Vec<VarLenUnicode>;
    let desc = match &col.cells {
        Cells::Bool(_) => <bool as hdf5::H5Type>::type_descriptor(),
        _ => <VarLenUnicode as hdf5::H5Type>::type_descriptor(),
    };
    if let Cells::Str(v) = &col.cells {
        strings = v
            .iter()
            .map(|s| s.parse::<VarLenUnicode>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::Table {
                path: here(),
                source: Box::new(TableError::Nul {
                    column: col.name.clone(),
                }),
            })?;
    } else {
        strings = Vec::new();
    }
    let existing = if group.link_exists(&col.name) {
        let ds = group.dataset(&col.name).map_err(h5("open column"))?;
        let same = ds.dtype().and_then(|t| t.to_descriptor()).ok() == Some(desc.clone())
            && ds.ndim() == 1
            && ds.chunk().as_deref() == Some(&[chunk][..]);
        if same {
            if ds.shape() != [n] {
                ds.resize([n]).map_err(h5("resize column"))?;
            }
            Some(ds)
        } else {
            group.unlink(&col.name).map_err(h5("replace column"))?;
            None
        }
    } else {
        None
    };
    let (ds, ranges): (hdf5::Dataset, Vec<usize>) = match (existing, chunks) {
        (Some(ds), Some(ch)) => (ds, ch.to_vec()),
        (Some(ds), None) => (ds, (0..n.div_ceil(chunk)).collect()),
        (None, _) => {
            let ds = match &col.cells {
                Cells::Bool(_) => group
                    .new_dataset::<bool>()
                    .chunk([chunk])
                    .shape([(n, None)])
                    .create(col.name.as_str()),
                _ => group
                    .new_dataset::<VarLenUnicode>()
                    .chunk([chunk])
                    .shape([(n, None)])
                    .create(col.name.as_str()),
            }
            .map_err(h5("create column"))?;
            (ds, (0..n.div_ceil(chunk)).collect())
        }
    };
    for &k in &ranges {
        let (a, b) = (k * chunk, ((k + 1) * chunk).min(n));
        if a >= b {
            continue;
        }
        let r = match &col.cells {
            Cells::Bool(v) => ds.write_slice(&v[a..b], ndarray::s![a..b]),
            _ => ds.write_slice(&strings[a..b], ndarray::s![a..b]),
        };
        r.map_err(h5("write column"))?;
    }
    Ok(ranges.len())
}

/// Writes `data` as a whole 1-D `uint64` column `name` of `group` through the file's
/// pipeline, chunked as a table column of its length (e.g. an index of ids).
pub fn write_ids(file: &File, group: &Group, path: &str, name: &str, data: &[u64]) -> Result<()> {
    let mut opts = file.array_options();
    opts.chunk = Some(vec![chunk_rows(data.len(), 0)]);
    let job = WriteJob::from_bytes(
        group,
        name,
        as_bytes(data),
        Dtype::U64,
        vec![data.len()],
        &opts,
    );
    file.inner()
        .pipeline()
        .write_many(&[job])
        .map(|_| ())
        .map_err(|source| Error::Pipeline {
            path: join(path, name),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_rows_grow_with_hysteresis_and_never_shrink() {
        assert_eq!(chunk_rows(0, 0), MIN_CHUNK_ROWS);
        assert_eq!(chunk_rows(1000, 0), 1024);
        assert_eq!(chunk_rows(1 << 20, 0), MAX_CHUNK_ROWS);
        assert_eq!(chunk_rows(1025, 1024), 1024);
        assert_eq!(chunk_rows(16 * 1024, 1024), 1024);
        assert_eq!(chunk_rows(16 * 1024 + 1, 1024), MAX_CHUNK_ROWS);
        assert_eq!(chunk_rows(3, 1024), 1024);
    }
}
