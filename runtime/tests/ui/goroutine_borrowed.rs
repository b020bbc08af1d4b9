#[gort::goroutine]
fn worker(name: &str) -> usize {
    name.len()
}

fn main() {
    let _ = worker("x");
}
