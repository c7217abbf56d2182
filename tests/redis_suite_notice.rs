//! Not a test of the service: a loud line in the output of every test run
//! saying whether the limits shared through Redis were tested.

fn main() {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            println!(
                "Redis suite: limits shared by two instances run against Redis (TEST_REDIS_URL is set)."
            );
        }
        _ => {
            let banner = "!".repeat(78);
            println!("{banner}");
            println!("!! Redis suite SKIPPED: limits shared across instances were not tested.");
            println!("!! Run them with a Redis server and");
            println!(
                "!!     TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test --lib rate_limit::redis"
            );
            println!(
                "!!     TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test --test api shared_limits"
            );
            println!("!! (each test uses keys of its own prefix; .ci/run does this.)");
            println!("{banner}");
        }
    }
}
