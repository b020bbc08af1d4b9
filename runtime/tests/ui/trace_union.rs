// `#[derive(Trace)]` cannot know which field of a union is live.
use gort::gc::Trace;

#[derive(Trace)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
