//! ihome-import: the command line (next commit).
fn main() {}
