//! Table-stored components: the bridge's side of a column table is only the mapping from
//! entities (persistent ids) to rows; the table itself, its chunked columns and which chunks a
//! flush rewrites, belong to the store ([`h5pom_store::table`]).

use std::collections::HashSet;

use crate::ids::IdIndex;

use bevy_ecs::prelude::*;
use h5pom_store::table::{
    ColumnTable, StoredTable, TableColumns, TableWrite, read_keys, read_table, read_table_columns,
    read_table_rows,
};
use h5pom_store::{DeferredArrays, Row, Value};

use crate::codec::Codec;
use crate::component::{
    ComponentSync, FlushCx, LoadCx, Queries, TypeFlush, is_unstorable_ref, uninit,
};
use crate::error::{EcsError, Result};
use crate::layout::{ENTITY_COLUMN, Layout};
use crate::staged::Staged;

fn table_err(tag: &str) -> impl Fn(h5pom_store::Error) -> EcsError + '_ {
    move |source| EcsError::Table {
        component: tag.to_owned(),
        source: Box::new(source),
    }
}

/// One table in memory and which entity is in which row.
pub(crate) struct TableRows {
    tag: &'static str,
    table: ColumnTable,
    /// Persistent id → row (a dense vector for the usual small ids: a tick's changed rows
    /// are looked up in id order without a cache miss each).
    row_of: IdIndex<usize>,
    /// The in-memory table is what the file holds (after the last write): a flush writes the
    /// difference. False at first and after a load, when the file's row order is not known.
    live: bool,
}

impl TableRows {
    pub(crate) fn new(tag: &'static str, fields: &[String]) -> Self {
        TableRows {
            tag,
            table: ColumnTable::with_fields(ENTITY_COLUMN, fields),
            row_of: IdIndex::default(),
            live: false,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    /// Forgets every row (the next write writes the table whole).
    pub(crate) fn reset(&mut self) {
        self.table.clear();
        self.row_of.clear();
    }

    /// Sets the row of entity `id`, appending it if new.
    pub(crate) fn upsert(&mut self, id: u64, names: &[String], values: &[Value]) -> Result<()> {
        let r = match self.row_of.get(id) {
            Some(row) => self.table.set(row, names, values),
            None => self.table.push(id, names, values).map(|row| {
                self.row_of.insert(id, row);
            }),
        };
        r.map_err(|source| EcsError::Component {
            entity: id,
            component: self.tag,
            source: h5pom_store::Error::Table {
                path: format!("/ecs/tables/{}", self.tag),
                source: Box::new(source),
            },
        })
    }

    /// Removes entity `id`'s row, if it has one (the last row moves into it).
    pub(crate) fn remove(&mut self, id: u64) {
        if let Some(row) = self.row_of.remove(id)
            && let Some(moved) = self.table.swap_remove(row)
        {
            self.row_of.insert(moved, row);
        }
    }

    /// Removes every row whose id is not in `keep`.
    pub(crate) fn retain(&mut self, keep: &HashSet<u64>) {
        let gone: Vec<u64> = self
            .table
            .keys()
            .iter()
            .copied()
            .filter(|id| !keep.contains(id))
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// Writes what changed (nothing if nothing did).
    pub(crate) fn write(&mut self, layout: &Layout) -> Result<Option<TableWrite>> {
        if self.live && !self.table.is_dirty() {
            return Ok(None);
        }
        let g = layout
            .table(self.tag, true)?
            .ok_or_else(|| EcsError::Table {
                component: self.tag.to_owned(),
                source: Box::new(h5pom_store::Error::NotFound {
                    path: format!("/ecs/tables/{}", self.tag),
                }),
            })?;
        let r = self.table.write(layout.file(), &g.group, &g.path);
        self.live = r.is_ok();
        r.map(Some).map_err(table_err(self.tag))
    }

    /// Reads the stored table of `tag` (`None` if the file has none).
    /// With `only`, just the rows of those ids.
    pub(crate) fn read(
        layout: &Layout,
        tag: &str,
        only: Option<&std::collections::HashSet<u64>>,
    ) -> Result<Option<StoredTable>> {
        let Some(g) = layout.table(tag, false)? else {
            return Ok(None);
        };
        match only {
            None => read_table(layout.file(), &g.group, &g.path, ENTITY_COLUMN),
            Some(ids) => read_table_rows(layout.file(), &g.group, &g.path, ENTITY_COLUMN, ids),
        }
        .map(Some)
        .map_err(table_err(tag))
    }

    /// Reads the whole stored table of `tag` column by column (`None` if there is none).
    pub(crate) fn read_columns(layout: &Layout, tag: &str) -> Result<Option<TableColumns>> {
        let Some(g) = layout.table(tag, false)? else {
            return Ok(None);
        };
        read_table_columns(layout.file(), &g.group, &g.path, ENTITY_COLUMN)
            .map(Some)
            .map_err(table_err(tag))
    }

    /// Reads only the ids of the stored table of `tag`.
    pub(crate) fn read_ids(layout: &Layout, tag: &str) -> Result<Vec<u64>> {
        let Some(g) = layout.table(tag, false)? else {
            return Ok(Vec::new());
        };
        read_keys(layout.file(), &g.group, &g.path, ENTITY_COLUMN).map_err(table_err(tag))
    }
}

/// A component stored as a column table `/ecs/tables/<Tag>`; a flush writes only the chunks
/// holding the rows of entities whose component changed, was added or removed. The codec `K`
/// knows `C`'s fields.
pub(crate) struct TableSync<C: Component, K> {
    codec: K,
    tag: &'static str,
    q: Option<Queries<C>>,
    rows: TableRows,
    /// One row's values (field names recorded at the first row).
    scratch: Row,
    /// Entities whose `C` was removed since the last flush.
    removed: Vec<Entity>,
    /// Persistent ids dropped since the last flush.
    gone: Vec<u64>,
    /// Entities whose row was skipped (a reference the file cannot hold): retried next flush.
    retry: HashSet<Entity>,
}

impl<C: Component, K: Codec<C>> TableSync<C, K> {
    pub(crate) fn new(codec: K) -> Self {
        let tag = codec.tag();
        TableSync {
            codec,
            tag,
            q: None,
            rows: TableRows::new(tag, &[]),
            scratch: Row::default(),
            removed: Vec::new(),
            gone: Vec::new(),
            retry: HashSet::new(),
        }
    }
}

impl<C: Component, K: Codec<C>> TableSync<C, K> {
    /// Sets entity `e`'s row. A row with a reference the file cannot hold is skipped (the
    /// table keeps the entity's last row, or has none) and retried at the next flush.
    fn upsert(&mut self, e: Entity, id: u64, c: &C, cx: &FlushCx<'_>) -> Result<bool> {
        self.scratch.values.clear();
        match self.codec.write_row(c, &mut self.scratch, Some(cx.ids)) {
            Ok(()) => {}
            Err(error) if is_unstorable_ref(&error) => {
                // The failed save may have recorded only part of the field names.
                self.scratch = Row::default();
                cx.skip(id, self.tag, error);
                self.retry.insert(e);
                return Ok(false);
            }
            Err(source) => {
                return Err(EcsError::Component {
                    entity: id,
                    component: self.tag,
                    source,
                });
            }
        }
        self.rows
            .upsert(id, &self.scratch.names, &self.scratch.values)?;
        Ok(true)
    }
}

impl<C: Component, K: Codec<C>> ComponentSync for TableSync<C, K> {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        if let Ok(mut r) = q.removed.get_mut(world) {
            self.removed.extend(r.read());
        }
    }

    fn entity_gone(&mut self, id: u64) {
        self.gone.push(id);
    }

    fn file_replaced(&mut self) {
        // The copy's row order is not this map's: the next change rewrites the table whole.
        self.rows.reset();
        self.rows.live = false;
    }

    fn loaded(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        let _ = q.changed.get(world);
        self.removed.clear();
        self.gone.clear();
        self.rows.reset();
        self.rows.live = false;
    }

    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        _sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let q = self.q.as_mut().ok_or_else(uninit)?;
        let changed: Vec<(Entity, &C)> = q.changed.get(world)?.into_iter().collect();
        let retry: Vec<Entity> = self.retry.drain().collect();
        let new: Vec<(Entity, &C)> = cx
            .new_entities
            .iter()
            .chain(&retry)
            .filter_map(|&e| world.get::<C>(e).map(|c| (e, c)))
            .collect();
        let mut out = TypeFlush::default();
        if !self.rows.is_live() || cx.full {
            // Right after a load nothing is written until something changes.
            let anything = cx.full
                || !changed.is_empty()
                || !new.is_empty()
                || !self.removed.is_empty()
                || !self.gone.is_empty();
            self.removed.clear();
            self.gone.clear();
            if !anything {
                return Ok(out);
            }
            // The file's row order is unknown: rebuild from the world, write whole.
            self.rows.reset();
            let q = self.q.as_mut().ok_or_else(uninit)?;
            let all: Vec<(Entity, &C)> = q.all.get(world)?.into_iter().collect();
            for (e, c) in all {
                if let Some(id) = cx.ids.id(e)
                    && self.upsert(e, id, c, cx)?
                {
                    out.written += 1;
                }
            }
        } else {
            for id in std::mem::take(&mut self.gone) {
                self.rows.remove(id);
            }
            for e in std::mem::take(&mut self.removed) {
                if world.get::<C>(e).is_none()
                    && let Some(id) = cx.ids.id(e)
                {
                    self.rows.remove(id);
                    out.removed += 1;
                }
            }
            for (e, c) in changed.into_iter().chain(new) {
                if let Some(id) = cx.ids.id(e)
                    && self.upsert(e, id, c, cx)?
                {
                    out.written += 1;
                }
            }
        }
        if let Some(w) = self.rows.write(cx.layout)? {
            out.tables = 1;
            out.table_chunks = w.chunks;
        }
        Ok(out)
    }

    fn unload(&self, world: &mut World, e: Entity) {
        if let Ok(mut e) = world.get_entity_mut(e) {
            e.remove::<C>();
        }
    }

    fn stage(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<Option<Box<dyn Staged>>> {
        Ok(crate::staged::stage(world, self.decode(cx)?))
    }

    fn table_ids(&self, layout: &Layout) -> Result<Vec<u64>> {
        TableRows::read_ids(layout, self.tag)
    }
}

impl<C: Component, K: Codec<C>> TableSync<C, K> {
    /// The stored components of the entities to load, decoded from the table's rows.
    fn decode(&self, cx: &LoadCx<'_>) -> Result<Vec<(Entity, C)>> {
        use rayon::prelude::*;
        let decode = |id: u64, names: &[String], values: &mut [Option<h5pom_store::Value>]| {
            let e = cx.ids.entity(id)?;
            let row = h5pom_store::RowRef { names, values };
            Some(
                self.codec
                    .read_row(row, Some(cx.refs))
                    .map(|c| (e, c))
                    .map_err(|source| EcsError::Component {
                        entity: id,
                        component: self.tag,
                        source,
                    }),
            )
        };
        if cx.only.is_none() {
            // A whole table: read column by column in the stored types, and each row turned
            // into values only while it is decoded (rows in parallel, in row order).
            let Some(t) = TableRows::read_columns(cx.layout, self.tag)? else {
                return Ok(Vec::new());
            };
            let k = t.names.len();
            let t = &t;
            // Indexed all the way (one allocation for the whole batch); rows whose id is not
            // to be loaded are `None`, dropped after.
            let rows: Vec<Option<Result<(Entity, C)>>> = t
                .keys
                .par_iter()
                .enumerate()
                .map_init(
                    || vec![None; k],
                    |cells, (i, &id)| {
                        t.fill_row(i, cells);
                        decode(id, &t.names, cells)
                    },
                )
                .collect();
            return rows.into_iter().flatten().collect();
        }
        let Some(mut t) = TableRows::read(cx.layout, self.tag, cx.only)? else {
            return Ok(Vec::new());
        };
        // Rows decode in parallel (each owns its slice of values), in row order.
        let k = t.names.len();
        let names = &t.names;
        let batch: Vec<(Entity, C)> = if k == 0 {
            // No columns: a component without fields.
            t.keys
                .iter()
                .filter_map(|&id| decode(id, names, &mut []))
                .collect::<Result<_>>()?
        } else {
            t.keys
                .par_iter()
                .zip(t.values.par_chunks_mut(k))
                .filter_map(|(&id, values)| decode(id, names, values))
                .collect::<Result<_>>()?
        };
        Ok(batch)
    }
}
