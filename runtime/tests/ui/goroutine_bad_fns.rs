#[gort::goroutine]
async fn fetch() -> u32 {
    1
}

#[gort::goroutine]
const fn constant() -> u32 {
    1
}

struct Server;

impl Server {
    #[gort::goroutine]
    fn serve(&self) {}

    #[gort::goroutine]
    fn serve_mut(&mut self) {}
}

fn main() {}
