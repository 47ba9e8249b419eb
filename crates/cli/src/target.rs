//! Opening the file and finding what PATH names in it.

use std::path::Path;

use h5pom_store::reexports::hdf5::{self, LocationType};
use h5pom_store::{File, Folder, Schema};

use crate::error::{CliError, Hdf5Ctx};

/// What a PATH on the command line names.
pub(crate) enum Target {
    /// A group: the root, a folder or an object.
    Group(Folder),
    /// A dataset.
    Dataset {
        /// Its absolute path.
        path: String,
        /// The dataset.
        ds: hdf5::Dataset,
    },
}

/// Opens `path` read-only with an empty schema: every object loads generically.
pub(crate) fn open(path: &Path) -> Result<File, CliError> {
    Ok(File::open_read_only(path, Schema::new())?)
}

/// Joins a group path and a child name.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Finds what `path` names, segment by segment (a leading `/` is optional; empty segments
/// are ignored, so `/`, `` and `//` all name the root).
pub(crate) fn resolve(file: &File, path: &str) -> Result<Target, CliError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut folder = file.root();
    for (i, seg) in segments.iter().enumerate() {
        let here = join(folder.path(), seg);
        let last = i + 1 == segments.len();
        // `contains` is false for names that cannot be object names (`.`, `..`, `h5pom-*`).
        if !folder.contains(seg)? {
            return Err(CliError::NoSuchPath(here));
        }
        match file.hdf5().loc_type_by_name(&here) {
            Ok(LocationType::Group) => folder = folder.folder(seg)?,
            Ok(LocationType::Dataset) if last => {
                let ds = file.hdf5().dataset(&here).at("open dataset", &here)?;
                return Ok(Target::Dataset { path: here, ds });
            }
            Ok(LocationType::Dataset) => {
                return Err(CliError::NoSuchPath(format!("/{}", segments.join("/"))));
            }
            Ok(_) => {
                return Err(CliError::NotInspectable {
                    path: here,
                    what: "a named datatype".into(),
                });
            }
            Err(_) => {
                return Err(CliError::NotInspectable {
                    path: here,
                    what: "a dangling or external link".into(),
                });
            }
        }
    }
    Ok(Target::Group(folder))
}
