// Fields whose types deliberately have no `Trace` impl: each is an error at
// the field, saying how to fix it.
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use gort::gc::{Gc, Trace};

#[derive(Trace)]
struct Shared {
    ok: Vec<Gc<u32>>,
    arc: Arc<Gc<u32>>,
    rc: Rc<u8>,
    reference: &'static Gc<u32>,
    cell: RefCell<Vec<Gc<u32>>>,
    lock: Mutex<Option<Gc<u32>>>,
}

#[derive(Trace)]
enum Either {
    Left(Arc<Gc<u32>>),
    Right { shared: Rc<Vec<Gc<u32>>> },
}

fn main() {}
