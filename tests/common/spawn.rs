//! Spawning the reference tools from tests, shared by the workspace's test crates (included with
//! `#[path]` by `crates/cli/tests/common/mod.rs`): finding Python, and keeping the HDF5 files a
//! test process has open out of its children.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True if `p` is an executable file.
pub(crate) fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The workspace root (the folder holding `Cargo.lock`, above the including crate).
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("Cargo.lock").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

/// The Python interpreter with h5py and numpy, `$H5POM_PYTHON` (a relative path is relative to
/// the workspace root), or `None` if the variable is unset or empty. Panics if it is set but
/// names no executable file.
pub(crate) fn python_if_set() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("H5POM_PYTHON").filter(|p| !p.is_empty())?);
    let p = if p.is_relative() {
        workspace_root().join(p)
    } else {
        p
    };
    assert!(
        is_executable(&p),
        "H5POM_PYTHON={} is not an executable file: run `make test` (it installs .venv)",
        p.display()
    );
    Some(p)
}

/// Keeps the HDF5 files this process has open out of `cmd`'s child.
///
/// libhdf5 opens files without `O_CLOEXEC`, so a child spawned while another test thread has a
/// file open inherits that descriptor, and with it the file's `flock`: the child then holds the
/// lock after the test closed the file, and h5py in the next child fails with "unable to lock
/// file". h5pom's `File` marks its descriptors close-on-exec once opened; this also covers files
/// the tests open with `hdf5` directly and the instant between `open(2)` and that marking. The
/// child marks every inherited descriptor above stderr close-on-exec before `exec`.
pub(crate) fn no_inherited_fds(cmd: &mut Command) {
    no_inherited_fds_except(cmd, Vec::new());
}

/// [`no_inherited_fds`], but the descriptors in `keep` are left as they are (a test of
/// h5pom's own close-on-exec marking keeps its file's descriptors out of the hygiene).
pub(crate) fn no_inherited_fds_except(cmd: &mut Command, keep: Vec<libc::c_int>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls `getrlimit`
    // and `fcntl`, which are async-signal-safe, and reads `keep`, allocated before the fork;
    // it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 16) as libc::c_int
            } else {
                1024
            };
            for fd in 3..max {
                if keep.contains(&fd) {
                    continue;
                }
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}
