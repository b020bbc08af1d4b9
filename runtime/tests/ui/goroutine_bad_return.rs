use std::rc::Rc;

#[gort::goroutine]
fn make() -> Rc<u32> {
    Rc::new(1)
}

fn main() {
    let _ = make();
}
