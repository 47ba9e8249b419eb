//! The history of the entity index: which persistent ids exist at each sample.

use std::collections::HashSet;

use h5pom_store::Value;
use h5pom_store::table::ColumnTable;
use rustc_hash::FxHashMap;

use super::*;

use crate::error::{EcsError, Result};
use crate::ids::IdMap;

/// Entities with `Persist` whose component types never changed still exist: the index keeps
/// which persistent ids exist at each sample (a history table with no field but presence).
pub(crate) struct IndexHistory {
    table: ColumnTable,
    slot_of: FxHashMap<u64, usize>,
    samples: Option<usize>,
    names: Vec<String>,
}

impl IndexHistory {
    pub(crate) fn new() -> Self {
        IndexHistory {
            table: ColumnTable::new(ENTITY),
            slot_of: FxHashMap::default(),
            samples: None,
            names: vec![PRESENT.into()],
        }
    }

    /// Appends a sample: every id in `ids` present, every other row absent. Only when
    /// `changed` (spawns or despawns this flush) or on the first sample.
    pub(crate) fn append(
        &mut self,
        ids: &IdMap,
        changed: bool,
        cx: &HistoryCx<'_>,
    ) -> Result<bool> {
        if !changed && self.samples.is_some() {
            return Ok(false);
        }
        let (g, path) = cx.group(INDEX_TAG)?;
        let samples = match self.samples {
            Some(n) => n,
            None if g.link_exists(STEP) => {
                let keys: Vec<u64> = g
                    .dataset(ENTITY)
                    .and_then(|d| d.read_raw())
                    .map_err(h5("read dataset", format!("{path}/{ENTITY}")))?;
                for id in keys {
                    self.push(id, false, &path)?;
                }
                g.dataset(STEP)
                    .map_err(h5("open dataset", format!("{path}/{STEP}")))?
                    .shape()[0]
            }
            None => 0,
        };
        let live: HashSet<u64> = ids.sorted_ids().into_iter().collect();
        let known: Vec<u64> = self.table.keys().to_vec();
        for id in known {
            self.push(id, live.contains(&id), &path)?;
        }
        for id in ids.sorted_ids() {
            if !self.slot_of.contains_key(&id) {
                self.push(id, true, &path)?;
            }
        }
        let w = self
            .table
            .append_frame(cx.file, &g, &path, samples)
            .map_err(EcsError::from)?;
        cx.stamp(&g, &path, samples)?;
        attach(&g, &path, &w.created, samples == 0, true)?;
        self.samples = Some(samples + 1);
        Ok(true)
    }

    fn push(&mut self, id: u64, present: bool, path: &str) -> Result<()> {
        let v = [Value::U8(u8::from(present))];
        let r = match self.slot_of.get(&id) {
            Some(&row) => self.table.set(row, &self.names, &v),
            None => self.table.push(id, &self.names, &v).map(|row| {
                self.slot_of.insert(id, row);
            }),
        };
        r.map_err(|source| {
            EcsError::Store(h5pom_store::Error::Table {
                path: path.to_owned(),
                source: Box::new(source),
            })
        })
    }

    /// Forgets the in-memory state (after a load the file is read again on the next append).
    pub(crate) fn reset(&mut self) {
        *self = IndexHistory::new();
    }
}
