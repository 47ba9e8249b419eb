//! `h5pom check`: opens and reads a file in a child process with a time limit, so that a crash
//! or a hang inside libhdf5 on a hostile file (docs/SECURITY.md) hits the child, not the caller.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::CliError;

/// What the probe found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every group and attribute was read.
    Readable,
    /// h5pom refused the file with a clean error (opening it again gives the same typed error).
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
            Verdict::Readable => 0,
            Verdict::Rejected(_) => 1,
            Verdict::Hung(_) => 3,
            Verdict::Crashed(_) => 4,
        }
    }

    /// One line for stdout.
    pub(crate) fn line(&self, file: &Path) -> String {
        let f = file.display();
        match self {
            Verdict::Readable => format!("{f}: readable (every group and attribute read)\n"),
            Verdict::Rejected(why) => format!("{f}: rejected cleanly: {why}\n"),
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

/// Runs `h5pom dump --json <file>` (this executable) in a child and judges how it ended.
pub(crate) fn probe(file: &Path, timeout: Duration) -> Result<Verdict, CliError> {
    let exe = std::env::current_exe().map_err(CliError::Io)?;
    let mut child = Command::new(exe)
        .arg("dump")
        .arg("--json")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(CliError::Io)?;
    // Read stderr on a thread, so a chatty child never blocks on a full pipe.
    let mut stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(CliError::Io)? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let _ = errors.join();
            return Ok(Verdict::Hung(timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(Verdict::Readable);
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
