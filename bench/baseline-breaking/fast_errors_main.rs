#![allow(dead_code)]
#[path = "/work/wt-servers/tests/support/servers.rs"]
mod servers;
fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let server = servers::FastErrors::start();
    println!("{}", server.url());
    std::thread::sleep(std::time::Duration::from_secs(secs));
    eprintln!("requests={}", server.server.requests());
}
