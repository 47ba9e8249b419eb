//! A guard against stack overflow in the recursive loaders.
//!
//! Loading follows sub-groups recursively (typed `Shared` fields and the generic walk), and a
//! file can nest groups without end. [`MAX_DEPTH`] bounds the depth, but the
//! stack used per level depends on the build (debug frames are several times larger) and on
//! the user's types (a derived `load_fields` with many fields has a large frame), so a depth
//! alone cannot keep a load inside a 2 MiB thread stack. The guard also measures the stack
//! used since the outermost load began and stops the load with an error past a budget.

use crate::error::{Error, Result};

/// How deep the loaders (typed shared objects and the generic walk) follow sub-groups before
/// reporting the file as corrupt.
pub const MAX_DEPTH: usize = 256;

/// Stack a single load may use below its entry point. Rust gives spawned threads 2 MiB by
/// default (the main thread 8 MiB); this leaves room for the caller and for libhdf5's own
/// calls at the deepest level.
pub(crate) const STACK_BUDGET: usize = 1 << 20;

/// The stack address where a load began.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBase(usize);

/// The current stack position (the address of a local).
#[inline(never)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl StackBase {
    /// Marks the current position as the start of a load.
    pub(crate) fn new() -> Self {
        StackBase(here())
    }

    /// `Err(Error::Corrupt)` once the load has used more than [`STACK_BUDGET`] below its base
    /// (the stack grows downwards on every platform Rust's std supports with threads).
    pub(crate) fn check(self, path: &str, depth: usize) -> Result<()> {
        let used = self.0.abs_diff(here());
        if used > STACK_BUDGET {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                reason: format!(
                    "groups nested too deep: stack budget of {STACK_BUDGET} bytes used up at depth {depth}"
                ),
            });
        }
        Ok(())
    }
}
