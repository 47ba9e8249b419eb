//! Reading a run's history: committed samples only.

use h5pom_store::mirror::MIRROR_SOURCE_ATTR;
use h5pom_store::{File, Value};

use super::*;
use h5pom_store::reexports::hdf5::Group;

use crate::error::{EcsError, Result};

/// A run file's history, for reading (`Registry::load_at`, [`HistoryReader`]).
pub struct HistoryReader {
    /// The file holding the history: the history file of a run on disk, else the run file.
    file: File,
    root: Option<Group>,
    committed: u64,
}

impl std::fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryReader")
            .field("file", &self.file.path())
            .field("committed", &self.committed)
            .finish()
    }
}

impl HistoryReader {
    /// Opens the history of the synced file (or slot pair link) `path`, read-only. Only
    /// samples of committed ticks are seen.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open_read_only(path, h5pom_store::Schema::new())?;
        let committed = crate::layout::Layout::open(file.clone())?.tick()?;
        let mut root = history_root(&file, false)?;
        // A run file's `/ecs/history` mirrors the history file (layout version 4): read the
        // history file itself (its chunks are what the decoders read).
        let source = match &root {
            Some(g) => h5pom_store::get_attr(g, "/ecs/history", MIRROR_SOURCE_ATTR)?,
            None => None,
        };
        // A run file without `/ecs/history` (a rewound run before its first flush) whose
        // history file is beside it: that file.
        let source = match (&root, source) {
            (None, None) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let side = format!("{name}.history");
                path.with_file_name(&side)
                    .exists()
                    .then_some(Value::Str(side))
            }
            (_, s) => s,
        };
        if let Some(source) = source {
            let Value::Str(name) = source else {
                return Err(crate::layout::not_ecs(
                    &file,
                    format!("/ecs/history@{MIRROR_SOURCE_ATTR} is not a string"),
                ));
            };
            let side = path.parent().unwrap_or(std::path::Path::new("")).join(name);
            file = File::open_read_only(&side, h5pom_store::Schema::new())?;
            root = history_root(&file, false)?;
        }
        Ok(HistoryReader {
            file,
            root,
            committed,
        })
    }

    /// Reads the history of the synced file `path` while its writer may be appending: opens a
    /// reader, runs `read`, and returns what it returned if no append ran meanwhile (checked
    /// with the sidecar's write sequence, [`seq_path`](super::seq_path)); otherwise it
    /// retries, up to `tries` times (at least once), with a short pause. The writer never
    /// waits for this reader. A history without a sequence file (kept in the run file, or
    /// written before the sequence file existed) is read once, unchecked.
    ///
    /// Keep `read` short (one series, one frame): a read that spans many of the writer's
    /// flushes keeps failing the check.
    pub fn read_consistent<T>(
        path: impl AsRef<std::path::Path>,
        tries: usize,
        mut read: impl FnMut(&HistoryReader) -> Result<T>,
    ) -> Result<T> {
        let path = path.as_ref();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let side = path.with_file_name(format!("{name}.history"));
        let mut last = None;
        for attempt in 0..tries.max(1) {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_micros(200 << attempt.min(6)));
            }
            let Some(before) = super::seq::read_seq(&side)? else {
                return read(&Self::open(path)?);
            };
            // An error is retried too: libhdf5 may have read a structure while an append
            // wrote it, or opened the run file's link while a commit replaced it ("Readers
            // while writing"). One that persists is returned after the last attempt.
            let outcome = Self::open(path).and_then(|r| read(&r));
            let after = super::seq::read_seq(&side)?;
            match outcome {
                Ok(v) if after.is_some_and(|a| before.consistent_with(a)) => return Ok(v),
                Ok(_) => last = None,
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EcsError::Io {
            op: "read history (the writer appended during every attempt)",
            path: side.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("{} attempts", tries.max(1)),
            ),
        }))
    }

    /// The tick the file is at: samples of later ticks (left by a killed writer) are ignored.
    pub fn committed_tick(&self) -> u64 {
        self.committed
    }

    /// The types with a history (tags), and `index`.
    pub fn tags(&self) -> Result<Vec<String>> {
        match &self.root {
            Some(r) => r.member_names().map_err(h5("list members", "/ecs/history")),
            None => Ok(Vec::new()),
        }
    }

    pub(crate) fn group(&self, tag: &str) -> Result<Option<(Group, String)>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let path = format!("/ecs/{HISTORY}/{tag}");
        if !root.link_exists(tag) {
            return Ok(None);
        }
        root.group(tag)
            .map(|g| Some((g, path.clone())))
            .map_err(h5("open group", path))
    }

    /// The committed steps of `tag`'s samples, in order.
    pub fn steps(&self, tag: &str) -> Result<Vec<i64>> {
        let Some((g, path)) = self.group(tag)? else {
            return Ok(Vec::new());
        };
        let n = committed_samples(&g, &path, self.committed)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let steps: Vec<i64> = g
            .dataset(STEP)
            .and_then(|d| d.read_raw())
            .map_err(h5("read dataset", format!("{path}/{STEP}")))?;
        Ok(steps.into_iter().take(n).collect())
    }

    /// The last committed tick that wrote a sample of a step at or before `step` (0 if
    /// none): the tick a run rewound to `step` continues from (its history keeps the samples
    /// of that tick and earlier; its next flush records what follows).
    pub fn last_tick_through(&self, step: i64) -> Result<u64> {
        let mut last = 0;
        for tag in self.tags()? {
            let Some((g, path)) = self.group(&tag)? else {
                continue;
            };
            let n = committed_samples(&g, &path, self.committed)?;
            if n == 0 {
                continue;
            }
            let steps: Vec<i64> = g
                .dataset(STEP)
                .and_then(|d| d.read_raw())
                .map_err(h5("read dataset", format!("{path}/{STEP}")))?;
            let ticks: Vec<u64> = g
                .dataset(TICK)
                .and_then(|d| d.read_raw())
                .map_err(h5("read dataset", format!("{path}/{TICK}")))?;
            for (&s, &t) in steps.iter().zip(&ticks).take(n) {
                if s <= step {
                    last = last.max(t);
                }
            }
        }
        Ok(last)
    }

    /// The sample of `tag` that holds its state at `step`: the last committed one whose step is
    /// at most `step` (`None` if the type had no sample yet).
    pub fn sample_at(&self, tag: &str, step: i64) -> Result<Option<usize>> {
        Ok(self.steps(tag)?.iter().rposition(|&s| s <= step))
    }

    /// The series of field `field` of `tag` for entity `id` (persistent id) over its committed
    /// samples: `(step, value)`, `None` where the entity did not have the component (or the
    /// value was `None`). Reads one column of the `[step, entity]` dataset, nothing else.
    pub fn series(&self, tag: &str, field: &str, id: u64) -> Result<Vec<(i64, Option<Value>)>> {
        let Some((g, path)) = self.group(tag)? else {
            return Ok(Vec::new());
        };
        let steps = self.steps(tag)?;
        let keys: Vec<u64> = g
            .dataset(ENTITY)
            .and_then(|d| d.read_raw())
            .map_err(h5("read dataset", format!("{path}/{ENTITY}")))?;
        let Some(slot) = keys.iter().position(|&k| k == id) else {
            return Ok(Vec::new());
        };
        let column = |name: &str| -> Result<Vec<Value>> {
            h5pom_store::series::read_column(&g, &path, name, slot, steps.len())
                .map_err(EcsError::from)
        };
        let field = series_name(field);
        let values = column(&field)?;
        let present = column(PRESENT)?;
        let none_name = format!("{field}{}", h5pom_store::table::NONE_SUFFIX);
        let nones = if g.link_exists(&none_name) {
            Some(column(&none_name)?)
        } else {
            None
        };
        Ok(steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let here = matches!(present.get(i), Some(Value::U8(1)));
                let none = nones
                    .as_ref()
                    .is_some_and(|m| !matches!(m.get(i), Some(Value::U8(0)) | None));
                let v = values.get(i).cloned().filter(|_| here && !none);
                (s, v)
            })
            .collect())
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}
