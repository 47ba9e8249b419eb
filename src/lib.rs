#![doc = include_str!("../README.md")]

pub use h5pom_derive::{Field, Object};
pub use h5pom_store::*;

/// The bevy_ecs bridge (`h5pom-ecs`).
pub use h5pom_ecs as ecs;

/// Sharded runs over MPI (`h5pom-mpi`, feature `mpi`).
#[cfg(feature = "mpi")]
pub use h5pom_mpi as mpi;

/// The traits most programs need in scope.
pub mod prelude {
    pub use h5pom_store::{Field, Object, Scalar};
}
