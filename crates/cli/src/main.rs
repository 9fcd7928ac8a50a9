//! The `deaddrop` command.
fn main() {}
