use std::rc::Rc;

fn consume(v: Rc<u32>) {
    println!("{v}");
}

fn main() {
    let shared = Rc::new(1);
    gort::go!(consume(shared.clone()));
}
