//! `h5pom check`: opens and reads a file in a child process with a time limit, so that a crash
//! or a hang inside libhdf5 on a hostile file (docs/SECURITY.md) hits the child, not the caller.
//!
//! The child (`h5pom probe`, hidden) opens the file as h5pom does, walks every object with
//! [`crate::walk`] (every object opened, every attribute read, the first and last chunk of every
//! dataset read, or all of it with `--full`), then loads the whole tree as `h5pom dump` does.
//! The first failure makes the file "not readable", with the object's path and libhdf5's reason.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::CliError;
use crate::walk::{self, Extent};
use crate::{dump, target};

/// What the probe found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every object was opened and read (what was read: the child's summary).
    Readable(String),
    /// Some object could not be opened or read, or h5pom refused the file, with a clean error:
    /// the first such object and why.
    Rejected(String),
    /// The probe did not finish within the time limit: libhdf5 hangs on this file.
    Hung(Duration),
    /// The probe died of a signal: libhdf5 crashes on this file.
    Crashed(String),
}

impl Verdict {
    /// The exit status of `h5pom check`: 0 readable, 1 rejected cleanly, 3 hang, 4 crash.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Verdict::Readable(_) => 0,
            Verdict::Rejected(_) => 1,
            Verdict::Hung(_) => 3,
            Verdict::Crashed(_) => 4,
        }
    }

    /// One line for stdout.
    pub(crate) fn line(&self, file: &Path) -> String {
        let f = file.display();
        match self {
            Verdict::Readable(what) => format!("{f}: readable ({what})\n"),
            Verdict::Rejected(why) => format!("{f}: NOT readable (rejected cleanly): {why}\n"),
            Verdict::Hung(t) => format!(
                "{f}: UNSAFE: reading did not finish within {t:?} (libhdf5 hangs on this file)\n"
            ),
            Verdict::Crashed(how) => {
                format!(
                    "{f}: UNSAFE: reading crashed the probe ({how}; libhdf5 crashes on this file)\n"
                )
            }
        }
    }
}

/// The most of the child's stdout and stderr kept (the rest is read and dropped).
const MAX_OUTPUT: u64 = 64 << 10;

/// Reads `pipe` to its end on a thread, so that a chatty child never blocks on a full pipe;
/// keeps the first [`MAX_OUTPUT`] bytes.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.by_ref().take(MAX_OUTPUT).read_to_end(&mut kept);
            let _ = std::io::copy(&mut p, &mut std::io::sink());
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Runs `h5pom probe [--full] <file>` (this executable) in a child and judges how it ended.
pub(crate) fn probe(file: &Path, timeout: Duration, full: bool) -> Result<Verdict, CliError> {
    let exe = std::env::current_exe().map_err(CliError::Io)?;
    let mut cmd = Command::new(exe);
    cmd.arg("probe");
    if full {
        cmd.arg("--full");
    }
    let mut child = cmd
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(CliError::Io)?;
    let summary = drain(child.stdout.take());
    let errors = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(CliError::Io)? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let _ = errors.join();
            let _ = summary.join();
            return Ok(Verdict::Hung(timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = errors.join().unwrap_or_default();
    let summary = summary.join().unwrap_or_default();
    if status.success() {
        return Ok(Verdict::Readable(summary.trim().to_owned()));
    }
    if status.code() == Some(1) {
        let line = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("h5pom: "))
            .map_or_else(
                || stderr.trim().to_owned(),
                |l| l["h5pom: ".len()..].to_owned(),
            );
        return Ok(Verdict::Rejected(line));
    }
    Ok(Verdict::Crashed(status.to_string()))
}

/// What the child does: opens `path` as h5pom does, walks every object ([`walk::walk`]), then
/// loads the whole tree as `h5pom dump` does. The summary of what was read, or the first
/// failure, as one line.
pub(crate) fn read_all(path: &Path, extent: Extent) -> Result<String, String> {
    let file = target::open(path).map_err(|e| e.to_string())?;
    let cov = walk::walk(file.hdf5(), extent).map_err(|f| f.to_string())?;
    let whole = || -> Result<(), CliError> {
        dump::Loaded::load(&file, &target::resolve(&file, "/")?, None)?;
        file.format_version()?;
        Ok(())
    };
    whole().map_err(|e| e.to_string())?;
    let data = match extent {
        Extent::Ends => "first and last chunk of every dataset read",
        Extent::Full => "every dataset read in full",
    };
    Ok(format!("{cov}; {data}; h5pom loads the tree\n"))
}
