#[gort::goroutine(stack = 4096)]
fn a() {}

#[gort::goroutine(locked, locked)]
fn b() {}

#[gort::goroutine(name)]
fn c() {}

fn main() {}
