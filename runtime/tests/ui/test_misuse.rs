#[gort::test]
fn takes_args(n: u32) {
    assert_eq!(n, 1);
}

#[gort::test]
async fn is_async() {}

fn main() {}
