/// The checked-in SDL is what clients generate code from: it must be what
/// the server serves.
#[test]
fn schema_graphql_matches_the_served_schema() {
    let served = contacts::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == served,
        "schema.graphql differs from the served schema; regenerate it with\n\n    cargo run -- print-schema > schema.graphql\n"
    );
}
