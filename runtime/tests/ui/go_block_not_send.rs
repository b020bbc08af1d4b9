use std::cell::RefCell;
use std::rc::Rc;

fn main() {
    let cell = Rc::new(RefCell::new(0));
    gort::go! {
        *cell.borrow_mut() += 1;
    }
}
