//! Column tables: a write touches only the chunks that hold changed rows, and what is read back
//! is what the table holds, through appends, removals (swap-remove), `None`s, type changes and
//! compression.

use h5pom_store::table::{ColumnTable, MAX_CHUNK_ROWS, TableError, read_table};
use h5pom_store::{ArrayOptions, Error, File, Filters, Schema, Value};

fn names() -> Vec<String> {
    ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
}

fn row(i: u64, salt: f64) -> Vec<Value> {
    vec![
        Value::F64(i as f64 + salt),
        if i.is_multiple_of(7) {
            Value::None
        } else {
            Value::I32(i as i32)
        },
        Value::Bool(i.is_multiple_of(2)),
    ]
}

/// The table read back equals the in-memory one, row by row.
fn assert_stored(file: &File, t: &ColumnTable) {
    let g = file.hdf5().group("t").unwrap();
    let mut s = read_table(file, &g, "/t", "id").unwrap();
    assert_eq!(s.keys, t.keys());
    assert_eq!(s.names, names());
    for i in 0..t.len() {
        let r = s.row(i);
        for j in 0..3 {
            assert_eq!(
                r.values[j].as_ref(),
                t.value(i, j).as_ref(),
                "row {i} col {j}"
            );
        }
    }
}

#[test]
fn one_changed_row_of_a_million_rewrites_one_chunk_per_changed_column() {
    let file = File::in_memory(Schema::new()).unwrap();
    let g = file.hdf5().create_group("t").unwrap();
    let n = 1_000_000u64;
    let mut t = ColumnTable::new("id");
    for i in 0..n {
        t.push(i + 1, &names(), &row(i, 0.0)).unwrap();
    }
    let w = t.write(&file, &g, "/t").unwrap();
    assert!(w.whole);
    // key, a, b, b-none (every 7th is None), c: unfiltered columns written whole take one
    // H5Dwrite (no chunk count), the bool column one write per chunk.
    assert_eq!(w.columns, 5);
    assert_eq!(w.chunks, (n as usize).div_ceil(MAX_CHUNK_ROWS));

    // Nothing changed: nothing written.
    assert!(!t.is_dirty());
    t.set(500_000, &names(), &row(500_000, 0.0)).unwrap();
    assert!(!t.is_dirty(), "the same values change nothing");

    // One row, every field changed (b stays non-None): one chunk of each of a, b, c.
    t.set(500_000, &names(), &row(500_001, 0.5)).unwrap();
    let w = t.write(&file, &g, "/t").unwrap();
    assert!(!w.whole);
    assert_eq!((w.columns, w.chunks), (3, 3));

    // One field of one row: one chunk.
    let mut r = row(500_001, 0.5);
    r[0] = Value::F64(-1.0);
    t.set(500_000, &names(), &r).unwrap();
    let w = t.write(&file, &g, "/t").unwrap();
    assert_eq!((w.columns, w.chunks), (1, 1));

    // A value becomes None: its column and mask chunk.
    r[1] = Value::None;
    t.set(500_000, &names(), &r).unwrap();
    let w = t.write(&file, &g, "/t").unwrap();
    assert_eq!((w.columns, w.chunks), (2, 2));

    // A removal moves the last row into the hole: one chunk per column, key and mask too.
    let moved = t.swap_remove(10);
    assert_eq!(moved, Some(n));
    let w = t.write(&file, &g, "/t").unwrap();
    assert_eq!(w.chunks, 5);

    // An append writes the last chunk of each column.
    t.push(n + 1, &names(), &row(3, 0.25)).unwrap();
    let w = t.write(&file, &g, "/t").unwrap();
    assert_eq!(w.chunks, 5);
    assert_eq!(t.len(), n as usize);
    assert_stored(&file, &t);
}

#[test]
fn compressed_tables_round_trip_through_partial_rewrites() {
    for filters in [Filters::deflate(1), Filters::lz4(), Filters::zstd(3)] {
        let file = File::in_memory(Schema::new()).unwrap();
        file.set_array_options(ArrayOptions::with_filters(filters));
        let g = file.hdf5().create_group("t").unwrap();
        let mut t = ColumnTable::new("id");
        for i in 0..5000u64 {
            t.push(i + 1, &names(), &row(i, 0.0)).unwrap();
        }
        t.write(&file, &g, "/t").unwrap();
        for k in 0..40u64 {
            let i = (k * 977) % t.len() as u64;
            t.set(i as usize, &names(), &row(i, k as f64)).unwrap();
            if k.is_multiple_of(5) {
                t.swap_remove((k * 31) as usize % t.len());
            }
            if k.is_multiple_of(3) {
                t.push(10_000 + k, &names(), &row(k, 1.0)).unwrap();
            }
            let w = t.write(&file, &g, "/t").unwrap();
            assert!(!w.whole, "{filters:?}");
        }
        assert_stored(&file, &t);
        let ds = g.dataset("a").unwrap();
        assert!(
            !ds.filters().is_empty(),
            "{filters:?}: columns are compressed"
        );
    }
}

#[test]
fn refused_rows_leave_the_table_unchanged() {
    let mut t = ColumnTable::new("id");
    t.push(1, &names(), &row(1, 0.0)).unwrap();
    let before: Vec<Option<Value>> = (0..3).map(|j| t.value(0, j)).collect();
    let mut bad = row(2, 0.5);
    bad[2] = Value::Str("not a bool".into());
    assert!(matches!(
        t.set(0, &names(), &bad),
        Err(TableError::MixedTypes { .. })
    ));
    assert!(matches!(
        t.push(2, &names(), &bad),
        Err(TableError::MixedTypes { .. })
    ));
    assert!(matches!(
        t.push(2, &names()[..2], &row(2, 0.0)[..2]),
        Err(TableError::Fields { .. })
    ));
    // A `None` set before the refused cell is taken back with the row.
    let mut bad = row(2, 0.5);
    bad[0] = Value::None;
    bad[2] = Value::I32(3);
    assert!(t.push(2, &names(), &bad).is_err());
    assert_eq!(t.len(), 1);
    let after: Vec<Option<Value>> = (0..3).map(|j| t.value(0, j)).collect();
    assert_eq!(before, after);
    // The table goes on as if the refused rows had never been offered.
    t.push(3, &names(), &row(3, 0.25)).unwrap();
    let file = File::in_memory(Schema::new()).unwrap();
    let g = file.hdf5().create_group("t").unwrap();
    t.write(&file, &g, "/t").unwrap();
    let mut s = read_table(&file, &g, "/t", "id").unwrap();
    assert_eq!(s.keys, [1, 3]);
    for (i, want) in [row(1, 0.0), row(3, 0.25)].into_iter().enumerate() {
        let got: Vec<Value> = s.row(i).values.iter().map(|v| v.clone().unwrap()).collect();
        assert_eq!(got, want);
    }
    assert!(!g.link_exists("a-none"), "no None stored in column a");
}

#[test]
fn strings_and_damaged_columns() {
    let file = File::in_memory(Schema::new()).unwrap();
    let g = file.hdf5().create_group("t").unwrap();
    let cols = vec!["s".to_string()];
    let mut t = ColumnTable::new("id");
    for i in 0..600u64 {
        let v = if i % 5 == 0 {
            Value::None
        } else {
            Value::Str(format!("name {i}"))
        };
        t.push(i + 1, &cols, &[v]).unwrap();
    }
    t.write(&file, &g, "/t").unwrap();
    t.set(3, &cols, &[Value::Str("changed".into())]).unwrap();
    let w = t.write(&file, &g, "/t").unwrap();
    assert_eq!(w.chunks, 1);
    let mut s = read_table(&file, &g, "/t", "id").unwrap();
    assert_eq!(s.row(3).values[0], Some(Value::Str("changed".into())));
    assert_eq!(s.row(5).values[0], Some(Value::None));

    // A NUL byte cannot be stored: a typed error, and the file keeps its last table.
    t.set(4, &cols, &[Value::Str("a\0b".into())]).unwrap();
    assert!(matches!(
        t.write(&file, &g, "/t"),
        Err(Error::Table { source, .. }) if matches!(*source, TableError::Nul { .. })
    ));
    t.set(4, &cols, &[Value::Str("fine".into())]).unwrap();
    assert!(
        t.write(&file, &g, "/t").unwrap().whole,
        "after a failure: whole"
    );

    // A column of another length than the keys is refused on read.
    g.unlink("s").unwrap();
    g.new_dataset::<i32>().shape([3]).create("s").unwrap();
    assert!(matches!(
        read_table(&file, &g, "/t", "id"),
        Err(Error::Table { source, .. }) if matches!(*source, TableError::RowCount { .. })
    ));
}

#[test]
fn reading_some_rows_gives_those_rows_of_the_whole_table() {
    use h5pom_store::table::read_table_rows;
    use std::collections::HashSet;
    let file = File::in_memory(Schema::new()).unwrap();
    let g = file.hdf5().create_group("t").unwrap();
    let names: Vec<String> = ["a", "b", "c", "v"].iter().map(|s| s.to_string()).collect();
    let mut t = ColumnTable::new("id");
    for i in 0..5_000u64 {
        let mut r = row(i, 0.25);
        r.push(Value::List(vec![
            Value::F32(i as f32),
            Value::F32(-(i as f32)),
        ]));
        // Keys out of order, as a table gets them after swap-removes.
        t.push((i * 7919) % 5_003 + 1, &names, &r).unwrap();
    }
    t.write(&file, &g, "/t").unwrap();
    let mut whole = read_table(&file, &g, "/t", "id").unwrap();
    let k = whole.names.len();
    // Few rows (one hyperslab per run), many rows (the whole column, filtered), none, and
    // keys not in the table.
    let few: HashSet<u64> = [
        whole.keys[0],
        whole.keys[1],
        whole.keys[2],
        whole.keys[4_999],
    ]
    .into_iter()
    .chain([whole.keys[2_500], 999_999])
    .collect();
    let many: HashSet<u64> = whole.keys.iter().copied().step_by(2).collect();
    for wanted in [few, many, HashSet::new()] {
        let mut part = read_table_rows(&file, &g, "/t", "id", &wanted).unwrap();
        assert_eq!(part.names, whole.names);
        let rows: Vec<usize> = (0..whole.keys.len())
            .filter(|&i| wanted.contains(&whole.keys[i]))
            .collect();
        assert_eq!(
            part.keys,
            rows.iter().map(|&i| whole.keys[i]).collect::<Vec<_>>()
        );
        for (j, &i) in rows.iter().enumerate() {
            let want: Vec<Option<Value>> = whole.row(i).values.to_vec();
            assert_eq!(part.row(j).values.to_vec(), want, "row {i}");
        }
        assert_eq!(part.values.len(), rows.len() * k);
    }
}
