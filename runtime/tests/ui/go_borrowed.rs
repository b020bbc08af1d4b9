fn print_it(s: &str) {
    println!("{s}");
}

fn main() {
    let text = String::from("hello");
    gort::go!(print_it(&text));
}
