#[gort::goroutine]
fn worker<T: Send + std::fmt::Debug>(value: T) -> String {
    format!("{value:?}")
}

fn main() {
    let _ = worker(1);
}
