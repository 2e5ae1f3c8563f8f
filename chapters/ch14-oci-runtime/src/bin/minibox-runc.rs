//! Chapter 14's `minibox-runc`: runc's command line.

fn main() {}
