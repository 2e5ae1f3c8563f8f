//! Placeholder: written by the module's own branch.
