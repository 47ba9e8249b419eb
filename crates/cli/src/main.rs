//! `h5pom`: the inspector of h5pom files.
//!
//! `h5pom ls FILE [PATH]` lists the entries of a group; `h5pom dump FILE [PATH]` prints the
//! objects below PATH, loaded without the Rust types that wrote them (as
//! [`h5pom_store::GenericObject`]s), as an indented tree or, with `--json`, as one JSON document
//! (shape in `docs/FORMAT.md ("The inspector's output")`).
//!
//! `h5pom check [--full] FILE` opens every object of the file, reads every attribute and the
//! first and last chunk (with `--full`, all) of every dataset, in a child process with a time
//! limit, and says whether libhdf5 can read it without failing, crashing or hanging (exit 0
//! readable, 1 not readable (the first object that fails and why), 3 hang, 4 crash; see
//! `docs/SECURITY.md`).
//!
//! `h5pom recover FILE` makes a synced ECS file whose writer was killed usable again and
//! prints the tick it holds (see `docs/FORMAT.md`, "Durability").
//!
//! Exit status: 0 on success, 1 when the file or PATH cannot be read (message on stderr,
//! prefixed `h5pom: `), 2 for bad arguments.

mod check;
mod dump;
mod error;
mod json;
mod ls;
mod target;
mod values;
mod walk;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::values::Limit;

/// Inspect h5pom files (HDF5 files of Rust or Python h5pom objects) without their types.
#[derive(Parser, Debug)]
#[command(name = "h5pom", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the entries of a group: name, kind, type tag, and dtype and shape of datasets.
    Ls {
        /// The HDF5 file.
        file: PathBuf,
        /// The group (or dataset) to list, e.g. `/cloud`.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Print the objects below PATH, as a tree or as JSON.
    Dump {
        /// The HDF5 file.
        file: PathBuf,
        /// The object, folder or dataset to print, e.g. `/cloud`.
        #[arg(default_value = "/")]
        path: String,
        /// Print one JSON document instead of a tree (shape: docs/FORMAT.md ("The inspector's output")).
        #[arg(long)]
        json: bool,
        /// Also print dataset values, row-major: the first 100 per dataset, or the first N
        /// with `--values=N`, or all with `--values=all`.
        #[arg(long, value_name = "N|all", num_args = 0..=1, require_equals = true,
              default_missing_value = "100")]
        values: Option<Limit>,
    },
    /// Open every object of FILE, read every attribute and the first and last chunk of every
    /// dataset, in a child process with a time limit: say whether it is readable and safe to
    /// open in your process (exit 0 readable; 1 not readable: the first object that fails and
    /// libhdf5's reason; 3 libhdf5 hangs; 4 libhdf5 crashes).
    Check {
        /// The HDF5 file (possibly hostile).
        file: PathBuf,
        /// Seconds before the probe counts as hung.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
        /// Read every dataset in full (in reads of bounded size), not only its first and last
        /// chunk.
        #[arg(long)]
        full: bool,
    },
    /// The child process of `check` (internal): reads FILE in this process.
    #[command(hide = true)]
    Probe {
        /// The HDF5 file.
        file: PathBuf,
        /// Read every dataset in full.
        #[arg(long)]
        full: bool,
    },
    /// After a crash of the writer: check that a synced ECS file opens, rebuild the other slot
    /// of a crash-safe pair from the committed one (or clear libhdf5's "open for write" flags
    /// of a plain file), and print the tick it holds. Run it with no writer on the file.
    Recover {
        /// The synced file (the link of a slot pair, or a plain file).
        file: PathBuf,
    },
}

/// Runs the command: its output and exit status.
fn run(cli: Cli) -> Result<(String, ExitCode), CliError> {
    let out = match cli.command {
        Command::Ls { file, path } => {
            let file = target::open(&file)?;
            ls::render(&file, &target::resolve(&file, &path)?)
        }
        Command::Dump {
            file: file_path,
            path,
            json,
            values,
        } => {
            let file = target::open(&file_path)?;
            let target = target::resolve(&file, &path)?;
            let loaded = dump::Loaded::load(&file, &target, values)?;
            Ok(if json {
                json::render(&file_path, &file, &loaded)?
            } else {
                dump::render(&loaded)
            })
        }
        Command::Check {
            file,
            timeout,
            full,
        } => {
            let v = check::probe(&file, std::time::Duration::from_secs(timeout), full)?;
            return Ok((v.line(&file), ExitCode::from(v.exit_code())));
        }
        Command::Probe { file, full } => {
            let extent = if full {
                walk::Extent::Full
            } else {
                walk::Extent::Ends
            };
            return Ok(match check::read_all(&file, extent) {
                Ok(summary) => (summary, ExitCode::SUCCESS),
                Err(why) => (String::new(), say_failure(&why)),
            });
        }
        Command::Recover { file } => {
            let r = h5pom_ecs::recover(&file).map_err(CliError::Ecs)?;
            let shown = file.display();
            Ok(if r.slot_pair {
                format!(
                    "{shown}: crash-safe pair, committed slot {} at tick {}; other slot rebuilt from it\n",
                    r.committed.display(),
                    r.tick
                )
            } else {
                format!("{shown}: plain file at tick {}; opens cleanly\n", r.tick)
            })
        }
    };
    Ok((out?, ExitCode::SUCCESS))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok((out, code)) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => code,
                // `h5pom dump … | head`: the reader went away; not an error of ours.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(&CliError::Io(e)),
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    say_failure(e)
}

/// Prints `h5pom: <why>` as one line on stderr; exit status 1.
fn say_failure(why: &dyn std::fmt::Display) -> ExitCode {
    let msg = why.to_string().replace(['\n', '\r'], " ");
    // Nothing sensible is left to do if stderr is gone too.
    let _ = writeln!(std::io::stderr(), "h5pom: {msg}");
    ExitCode::FAILURE
}
