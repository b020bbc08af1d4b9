use std::rc::Rc;

#[gort::goroutine]
fn worker(id: u32, counter: Rc<u32>) -> u32 {
    id + *counter
}

fn main() {
    let _ = worker(1, Rc::new(2));
}
