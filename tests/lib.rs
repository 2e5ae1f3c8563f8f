//! The workspace-wide end-to-end suite. The tests are `help.rs` (every chapter's
//! help text) and `demos.rs` (every chapter's demo transcripts, which the book
//! shows); their snapshots live in `snapshots/`. This library is empty.
