//! `cargo run --release --example sim -- --help`: a particle simulation in bevy_ecs whose world
//! h5pom persists every tick. See `examples/sim/README.md`.
//!
//! Prints a summary whose last line is `checksum: <hex>`; on failure prints one line
//! `sim: <error>` on stderr and exits with status 1 (clap's usage errors exit with 2).

mod cli;
mod engine;
mod progress;
mod report;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let mut progress = progress::Progress::new(args.quiet());
    let outcome = engine::run(&args.config(), &mut progress);
    progress.finish();
    match outcome {
        Ok(o) if o.rank != 0 => ExitCode::SUCCESS, // rank 0 reports an MPI run
        Ok(o) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{}", report::summary(&o));
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the source chain holds.
            eprintln!("sim: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
