//! Rows of column tables ([`Row`], [`RowRef`]) and references to other systems' handles
//! ([`RefMap`]).

use crate::value::Value;

/// Maps handles of another system (for example ECS entities, as `u64` bits) to the
/// persistent ids stored in the file, and back. Installed by the layer that owns those handles
/// (the ECS bridge); plain object graphs do not need it.
pub trait RefMap {
    /// The persistent id to store for the handle `bits`, or `None` if it cannot be stored
    /// (the target is not persisted).
    fn persistent_id(&self, bits: u64) -> Option<u64>;
    /// The handle for a stored persistent id (creating or reserving it if needed).
    fn resolve(&self, id: u64) -> Option<u64>;
    /// True if an *optional* reference whose target cannot be mapped is stored as empty
    /// (`None`) rather than refused with [`Error::UnpersistedRef`](crate::Error), and a
    /// stored optional reference that resolves to nothing loads as `None` rather than
    /// failing with `Error::DanglingRef`. A required reference is always refused.
    fn unmapped_as_none(&self) -> bool {
        false
    }
}

/// A flat row of values: the sink of an object whose fields are all scalars, for columnar
/// (table) storage. Field `i` of the object lands in `values[i]`.
#[derive(Debug, Default)]
pub struct Row {
    /// Field names, in the order the object writes them (filled by the first save into an
    /// empty `names` only).
    pub names: Vec<String>,
    /// Values of the current row.
    pub values: Vec<Value>,
}

/// A row being read: the names of the columns and this row's values (taken as read).
pub struct RowRef<'a> {
    /// Column names.
    pub names: &'a [String],
    /// This row's values, in column order.
    pub values: &'a mut [Option<Value>],
}
