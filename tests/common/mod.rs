//! Helpers shared by the integration tests: the reference tools (Python with h5py, h5dump),
//! temporary directories, and a minimal JSON writer for expectation files.
//!
//! The reference tools are required, never optional: a test that cannot find them fails and
//! says how to install them (`make test` runs `scripts/setup.sh`, which creates `.venv`).

#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

pub(crate) mod manifest;
pub(crate) mod spawn;

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spawn::{is_executable, no_inherited_fds};

/// Where the Python scripts of the tests live.
pub(crate) fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
}

/// The Python interpreter with h5py and numpy: `$H5POM_PYTHON`. Panics if unusable.
pub(crate) fn python() -> PathBuf {
    spawn::python_if_set().unwrap_or_else(|| {
        panic!(
            "H5POM_PYTHON is not set: the interop tests need Python with h5py; \
             run `make test` (it installs .venv)"
        )
    })
}

/// The `h5dump` tool: `$H5DUMP` if set, else the first `h5dump` on `PATH`. Panics if missing.
pub(crate) fn h5dump() -> PathBuf {
    if let Some(p) = std::env::var_os("H5DUMP").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "H5DUMP={} is not an executable file: run `make test` (it installs hdf5-tools)",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("h5dump"))
        .find(|p| is_executable(p))
        .unwrap_or_else(|| {
            panic!("h5dump not found on PATH: run `make test` (it installs Debian's hdf5-tools)")
        })
}

/// Output of a tool that succeeded.
pub(crate) struct Ran {
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion (with [`no_inherited_fds`]) and returns its status and output.
pub(crate) fn run(mut cmd: Command) -> (std::process::ExitStatus, Ran) {
    no_inherited_fds(&mut cmd);
    let what = describe(&cmd);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
    let ran = Ran {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    (status, ran)
}

/// Runs `cmd` and panics, showing its output, unless it exits with status 0.
pub(crate) fn run_ok(cmd: Command) -> Ran {
    let what = describe(&cmd);
    let (status, ran) = run(cmd);
    assert!(
        status.success(),
        "`{what}` failed ({status})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        tail(&ran.stdout),
        tail(&ran.stderr)
    );
    ran
}

/// The last 200 lines of `s` (tool output can be long; the end is what explains a failure).
fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let skip = lines.len().saturating_sub(200);
    let mut out = if skip > 0 {
        format!("[… {skip} lines …]\n")
    } else {
        String::new()
    };
    out.push_str(&lines[skip..].join("\n"));
    out
}

/// The command running `tests/py/<script>` with `args` under [`python`].
pub(crate) fn py_command<I, S>(script: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = py_dir().join(script);
    assert!(path.is_file(), "missing test script {}", path.display());
    let mut cmd = Command::new(python());
    cmd.arg(path).args(args);
    cmd
}

/// Runs `tests/py/<script>` with `args` under [`python`]; panics with its output on failure.
pub(crate) fn run_py<I, S>(script: &str, args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_ok(py_command(script, args))
}

/// Runs `h5dump <args> <file>`; panics with its output unless it exits with status 0.
pub(crate) fn run_h5dump(file: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(h5dump());
    cmd.args(args).arg(file);
    run_ok(cmd)
}

/// A fresh temporary directory, removed when dropped.
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("h5pom-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// A JSON value, enough to hand expectations to the Python scripts.
#[derive(Clone, Debug)]
pub(crate) enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (every Rust integer fits; floats are passed as their bits).
    Int(i128),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in insertion order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub(crate) fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string.
    pub(crate) fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// An integer.
    pub(crate) fn int(i: impl Into<i128>) -> Json {
        Json::Int(i.into())
    }

    /// An array of integers.
    pub(crate) fn ints<T: Into<i128>>(v: impl IntoIterator<Item = T>) -> Json {
        Json::Arr(v.into_iter().map(|i| Json::Int(i.into())).collect())
    }
}

fn write_json_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(i) => write!(f, "{i}"),
            Json::Str(s) => write_json_str(f, s),
            Json::Arr(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Json::Obj(pairs) => {
                f.write_char('{')?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_json_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Builds the targets `what` names (cargo arguments, e.g. `["-p", "h5pom", "--example",
/// "sim"]`) in this test's profile, once per test process and set of arguments: `cargo test
/// --examples` builds the examples only as test harnesses, so `target/<profile>/examples/<name>`
/// may be missing or stale.
pub(crate) fn cargo_build(what: &[&str]) {
    static BUILT: std::sync::Mutex<Vec<Vec<String>>> = std::sync::Mutex::new(Vec::new());
    let key: Vec<String> = what.iter().map(|s| (*s).to_owned()).collect();
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if built.contains(&key) {
        return;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile: &[&str] = if cfg!(debug_assertions) {
        &[]
    } else {
        &["--release"]
    };
    let status = Command::new(&cargo)
        .arg("build")
        .args(profile)
        .args(what)
        .args(["--quiet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build {what:?} failed");
    built.push(key);
}

/// `target/<profile>/<sub>/<name>`, beside this test's binary (`sub`: `examples`, or `""` for
/// a binary).
pub(crate) fn target_bin(sub: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join(sub).join(name);
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}
