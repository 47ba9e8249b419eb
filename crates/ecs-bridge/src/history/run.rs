//! The history of a running sync: its file, and one sample per changed type per flush.

use h5pom_store::File;

use super::h5md::{self, H5mdRun};
use super::index::IndexHistory;
use super::seq::SeqWriter;
use super::*;
use h5pom_store::reexports::hdf5::Group;

use crate::error::{EcsError, Result};
use crate::ids::IdMap;

/// The history of a running sync: its file, the state of every kept type, and what happened
/// since the last sample.
pub(crate) struct HistoryRun {
    conf: History,
    file: File,
    root: Group,
    types: Vec<Box<dyn HistorySync>>,
    index: IndexHistory,
    pending_new: Vec<Entity>,
    pending_gone: Vec<u64>,
    /// The file name the run files link `/ecs/history` to (`None`: the history is in the run
    /// file itself).
    link: Option<String>,
    h5md: Option<H5mdRun>,
    /// The sidecar's write sequence (`None` for a history in the run file).
    seq: Option<SeqWriter>,
    /// Sample every type at every flush ([`HistoryCx::every`]).
    every: bool,
}

/// `/ecs/history` of `file`, created if `create`.
pub(super) fn history_root(file: &File, create: bool) -> Result<Option<Group>> {
    let h5 = file.hdf5();
    let ecs = if h5.link_exists("ecs") {
        h5.group("ecs").map_err(self::h5("open group", "/ecs"))?
    } else if create {
        h5.create_group("ecs")
            .map_err(self::h5("create group", "/ecs"))?
    } else {
        return Ok(None);
    };
    let path = format!("/ecs/{HISTORY}");
    if ecs.link_exists(HISTORY) {
        return ecs
            .group(HISTORY)
            .map(Some)
            .map_err(self::h5("open group", path));
    }
    if !create {
        return Ok(None);
    }
    ecs.create_group(HISTORY)
        .map(Some)
        .map_err(self::h5("create group", path))
}

/// Cuts every series group below `g` to its committed samples (recursively: a component's
/// group holds one series group per entity with arrays).
fn cut(g: &Group, path: &str, committed: u64, series: bool) -> Result<()> {
    let names = g.member_names().map_err(h5("list members", path))?;
    if series {
        let keep = committed_samples(g, path, committed)?;
        let data: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != ENTITY && !n.contains("-dim") && g.dataset(n).is_ok())
            .collect();
        h5pom_store::series::truncate(g, path, keep, &data)?;
    }
    for n in &names {
        if let Ok(sub) = g.group(n) {
            cut(&sub, &format!("{path}/{n}"), committed, true)?;
        }
    }
    Ok(())
}

/// The number of leading samples of `g` whose tick is at most `committed`.
pub(super) fn committed_samples(g: &Group, path: &str, committed: u64) -> Result<usize> {
    if !g.link_exists(TICK) {
        return Ok(0);
    }
    let ticks: Vec<u64> = g
        .dataset(TICK)
        .and_then(|d| d.read_raw())
        .map_err(h5("read dataset", format!("{path}/{TICK}")))?;
    Ok(ticks.iter().take_while(|&&t| t <= committed).count())
}

impl HistoryRun {
    /// Starts (or continues) the history of a sync whose file is `path` and holds
    /// `committed` ticks: in the sidecar `<path>.history` (opened with HDF5's file lock if
    /// `locking`, as the run file is), or in `in_file` (in-memory syncs).
    /// Samples a killed writer left past the committed tick are cut off.
    pub(crate) fn open(
        path: &std::path::Path,
        in_file: Option<&File>,
        locking: bool,
        committed: u64,
        types: Vec<Box<dyn HistorySync>>,
        conf: History,
    ) -> Result<Self> {
        let (file, link, mut seq) = match in_file {
            Some(f) => (f.clone(), None, None),
            None => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let side = path.with_file_name(format!("{name}.history"));
                // Locked first: a second writer is refused before it touches the sidecar.
                let mut seq = SeqWriter::open(&side)?;
                seq.begin()?;
                let file = if locking {
                    File::open_with(
                        &side,
                        h5pom_store::Mode::OpenOrCreate,
                        h5pom_store::Schema::new(),
                    )?
                } else {
                    File::open_unlocked(
                        &side,
                        h5pom_store::Mode::OpenOrCreate,
                        h5pom_store::Schema::new(),
                    )?
                };
                (file, Some(format!("{name}.history")), Some(seq))
            }
        };
        let root = history_root(&file, true)?.ok_or(EcsError::Uninitialized)?;
        cut(&root, &format!("/ecs/{HISTORY}"), committed, false)?;
        file.flush()?;
        if let Some(s) = &mut seq {
            s.end()?;
        }
        let mut conf = conf;
        let h5md = conf.h5md.take().map(H5mdRun::new);
        Ok(HistoryRun {
            h5md,
            conf,
            file,
            root,
            types,
            index: IndexHistory::new(),
            pending_new: Vec::new(),
            pending_gone: Vec::new(),
            link,
            seq,
            every: false,
        })
    }

    /// The configuration it was opened with (closes the history file).
    pub(crate) fn into_conf(self) -> History {
        let mut conf = self.conf;
        conf.h5md = self.h5md.map(H5mdRun::into_conf);
        conf
    }

    /// The history file's `/ecs/history`.
    pub(crate) fn root(&self) -> &Group {
        &self.root
    }

    /// The history file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Samples every component type (and the index) at every flush, changed or not.
    pub(crate) fn sample_every_flush(&mut self, on: bool) {
        self.every = on;
    }

    /// The sidecar's file name, to link to.
    pub(crate) fn link(&self) -> Option<&str> {
        self.link.as_deref()
    }

    /// The root groups the run files link to the sidecar too (the H5MD view's).
    pub(crate) fn root_links(&self) -> &'static [&'static str] {
        if self.h5md.is_some() {
            &h5md::ROOTS
        } else {
            &[]
        }
    }

    /// Reads this tick's removal events.
    pub(crate) fn drain(&mut self, world: &mut World, new: &[Entity], gone: &[u64]) {
        self.pending_new.extend_from_slice(new);
        self.pending_gone.extend_from_slice(gone);
        for t in &mut self.types {
            t.drain(world);
        }
    }

    /// After a load: the next sample of every type records it whole.
    pub(crate) fn loaded(&mut self, world: &mut World) {
        self.pending_new.clear();
        self.pending_gone.clear();
        for t in &mut self.types {
            t.loaded(world);
        }
        self.index.reset();
    }

    /// Appends this flush's samples (tick `tick`) and flushes the history file; true if any.
    /// The write sequence is odd from before the first write until the flush is done; an
    /// error leaves it odd (the sync halts, and readers know the writer stopped when its lock
    /// on the sequence file goes).
    pub(crate) fn append(&mut self, world: &World, ids: &IdMap, tick: u64) -> Result<bool> {
        if let Some(s) = &mut self.seq {
            s.begin()?;
        }
        let any = self.append_samples(world, ids, tick)?;
        if let Some(s) = &mut self.seq {
            s.end()?;
        }
        Ok(any)
    }

    fn append_samples(&mut self, world: &World, ids: &IdMap, tick: u64) -> Result<bool> {
        let (step, time) = (self.conf.step_time)(world);
        let new = std::mem::take(&mut self.pending_new);
        let gone = std::mem::take(&mut self.pending_gone);
        let cx = HistoryCx {
            file: &self.file,
            root: &self.root,
            ids,
            new_entities: &new,
            step,
            time,
            tick,
            every: self.every,
        };
        let mut any =
            self.index
                .append(ids, self.every || !new.is_empty() || !gone.is_empty(), &cx)?;
        for t in &mut self.types {
            for &id in &gone {
                t.entity_gone(id);
            }
            any |= t.append(world, &cx)?;
        }
        if !any {
            // Nothing appended: no link or box row can be due, and no HDF5 call is made.
            return Ok(false);
        }
        if let Some(v) = &mut self.h5md {
            let root = self.file.hdf5().group("/").map_err(h5("open group", "/"))?;
            v.update(world, ids, &root)?;
        }
        self.file.flush()?;
        Ok(true)
    }
}
