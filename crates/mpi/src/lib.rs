//! Sharded h5pom runs over MPI (feature `mpi` of the `h5pom` crate).
//!
//! [`MpiComm`] gives [`ShardedSync`](h5pom_ecs::ShardedSync) the two agreements a commit
//! across ranks needs (`MPI_Allreduce` with `MPI_MIN` / `MPI_MAX` over `u64`s); everything
//! else (shards, run file, reload on any number of ranks) is `h5pom_ecs::sharded`, which
//! `docs/FORMAT.md` ("Sharded (MPI) runs") specifies.
//!
//! ```no_run
//! # fn registry() -> h5pom_ecs::Registry { h5pom_ecs::Registry::new() }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let universe = h5pom_mpi::init().ok_or("MPI is already initialized")?;
//! let comm = h5pom_mpi::MpiComm::world(&universe);
//! let mut world = bevy_ecs::world::World::new();
//! // … spawn this rank's share of the entities …
//! let mut sync = h5pom_ecs::ShardedSync::create("run.h5", &registry(), comm)?;
//! sync.flush(&mut world)?; // every rank, every tick
//! # Ok(()) }
//! ```

use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;

pub use mpi;

/// The MPI environment: finalizes MPI when dropped (keep it alive as long as MPI is used).
pub type Universe = mpi::environment::Universe;

/// Initializes MPI (once per process); `None` if it was initialized already. A process
/// started without `mpirun` is a job of one rank.
pub fn init() -> Option<Universe> {
    mpi::initialize()
}

/// An MPI communicator as the [`Collective`](h5pom_ecs::Collective) of a sharded run.
pub struct MpiComm {
    comm: SimpleCommunicator,
}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .finish()
    }
}

impl MpiComm {
    /// All the ranks of the job (`MPI_COMM_WORLD`).
    pub fn world(universe: &Universe) -> Self {
        MpiComm {
            comm: universe.world(),
        }
    }

    /// A communicator of one's own choosing (a split of the world, say).
    pub fn new(comm: SimpleCommunicator) -> Self {
        MpiComm { comm }
    }

    /// The communicator, for the application's own messages.
    pub fn raw(&self) -> &SimpleCommunicator {
        &self.comm
    }

    fn reduce(&self, values: &mut [u64], op: SystemOperation) {
        let send = values.to_vec();
        self.comm.all_reduce_into(&send[..], values, op);
    }
}

impl h5pom_ecs::Collective for MpiComm {
    fn rank(&self) -> usize {
        usize::try_from(self.comm.rank()).unwrap_or(0)
    }

    fn size(&self) -> usize {
        usize::try_from(self.comm.size()).unwrap_or(1)
    }

    fn all_min(&self, values: &mut [u64]) {
        self.reduce(values, SystemOperation::min());
    }

    fn all_max(&self, values: &mut [u64]) {
        self.reduce(values, SystemOperation::max());
    }

    fn all_sum(&self, values: &mut [u64]) {
        self.reduce(values, SystemOperation::sum());
    }
}
