//! The cost of the agreements of a sharded commit on this machine: `MPI_Allreduce(MIN)` of three
//! `u64`s (the first agreement) and of one (the second), as `ShardedSync::flush` makes them,
//! timed over many rounds after a barrier, so that no rank waits for another's work.
//!
//! `cargo build --release --features mpi --example mpi_agree`, then
//! `mpirun -np 2 target/release/examples/mpi_agree` (`benches/mpi_flush.sh` runs it).

use std::time::Instant;

use h5pom::ecs::Collective;
use h5pom::mpi::mpi::traits::CommunicatorCollectives;

fn main() {
    let Some(universe) = h5pom::mpi::init() else {
        eprintln!("MPI was initialized already");
        std::process::exit(1);
    };
    let comm = h5pom::mpi::MpiComm::world(&universe);
    let rounds = 20_000;
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds + 100 {
        comm.raw().barrier();
        let t = Instant::now();
        let mut first = [round as u64, 1, u64::MAX];
        comm.all_min(&mut first);
        let mut second = [1u64];
        comm.all_min(&mut second);
        if round >= 100 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    if comm.rank() == 0 {
        println!(
            "agreements ranks={} rounds={rounds} p50_us={:.1} p95_us={:.1} max_us={:.1}",
            comm.size(),
            times[rounds / 2],
            times[rounds * 95 / 100],
            times[rounds - 1]
        );
    }
}
