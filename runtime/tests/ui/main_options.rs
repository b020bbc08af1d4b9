#[gort::main(procs = 4)]
fn main() {}
