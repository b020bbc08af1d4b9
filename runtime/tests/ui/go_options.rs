fn work() {}

fn main() {
    gort::go!(nmae = "worker"; work());
    gort::go!(name = "a", name = "b"; work());
    gort::go!(locked = true; work());
}
