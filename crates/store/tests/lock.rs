//! A file locked by another process is reported as `Error::Locked`, told by libhdf5's error
//! codes (not its message); a file open here without HDF5's lock opens again.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use h5pom_store::reexports::hdf5::{MajorErrorCode, MinorErrorCode};
use h5pom_store::{Error, File, Mode, Schema};

/// Set in the child process: the file it holds open for writing.
const HOLD_ENV: &str = "H5POM_STORE_TEST_HOLD";

fn new_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("locked.h5");
    File::create(&path, Schema::new()).unwrap().close().unwrap();
    path
}

fn assert_locked(r: h5pom_store::Result<File>, path: &Path) -> h5pom_store::reexports::hdf5::Error {
    match r {
        Err(Error::Locked { path: p, source }) => {
            assert_eq!(p, path);
            source
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
}

/// Not a test on its own: the child of `a_file_open_for_writing_in_another_process_is_locked`.
/// Opens the file for writing (libhdf5 takes an exclusive `flock`), says "ready", and keeps it
/// open until its stdin closes.
#[test]
#[ignore = "run as a child process by another test"]
fn child_holds_file_open() {
    let Some(path) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let file = File::open(&path, Schema::new()).unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    file.close().unwrap();
}

#[test]
fn a_file_open_for_writing_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(dir.path());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_file_open",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(HOLD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "the child exited first"
        );
    }

    let source = assert_locked(File::open_read_only(&path, Schema::new()), &path);
    assert_locked(File::open(&path, Schema::new()), &path);
    // What libhdf5 2.x pushes when `flock` fails: the sec2 driver and H5FD_lock report
    // (H5E_VFL, H5E_CANTLOCKFILE), H5F_open (H5E_FILE, H5E_CANTLOCKFILE).
    let stack = source.stack().expect("an HDF5 error stack");
    let codes: Vec<_> = stack
        .iter()
        .map(|f| (f.major_code(), f.minor_code()))
        .collect();
    assert!(
        codes.contains(&(MajorErrorCode::File, MinorErrorCode::CantLockFile)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(
            MajorErrorCode::VirtualFileLayer,
            MinorErrorCode::CantLockFile
        )),
        "{codes:?}"
    );

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    File::open_read_only(&path, Schema::new()).unwrap();
}

#[test]
fn a_file_flocked_by_another_descriptor_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(dir.path());
    let holder = std::fs::File::open(&path).unwrap();
    holder.lock().unwrap();
    assert_locked(File::open_read_only(&path, Schema::new()), &path);
    assert_locked(
        File::open_with(&path, Mode::OpenOrCreate, Schema::new()),
        &path,
    );
    holder.unlock().unwrap();
    File::open(&path, Schema::new()).unwrap();
}

#[test]
fn a_shared_lock_lets_readers_in_and_keeps_writers_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(dir.path());
    let holder = std::fs::File::open(&path).unwrap();
    holder.lock_shared().unwrap();
    File::open_read_only(&path, Schema::new()).unwrap();
    assert_locked(File::open(&path, Schema::new()), &path);
}

#[test]
fn a_file_open_here_without_the_lock_opens_again_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(dir.path());
    let unlocked = File::open_unlocked(&path, Mode::ReadWrite, Schema::new()).unwrap();
    let again = File::open_read_only(&path, Schema::new()).unwrap();
    drop(again);
    drop(unlocked);
}

#[test]
fn other_open_failures_are_not_lock_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.h5");
    std::fs::write(&garbage, b"not an HDF5 file at all").unwrap();
    match File::open_read_only(&garbage, Schema::new()) {
        Err(Error::NotHdf5 { .. }) => {}
        other => panic!("expected Error::NotHdf5, got {other:?}"),
    }
    match File::open_read_only(dir.path().join("missing.h5"), Schema::new()) {
        Err(Error::FileNotFound { .. }) => {}
        other => panic!("expected Error::FileNotFound, got {other:?}"),
    }
}
