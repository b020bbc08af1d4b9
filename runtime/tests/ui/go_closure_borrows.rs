fn main() {
    let v = vec![1, 2, 3];
    gort::go!(|| println!("{}", v.len()));
}
