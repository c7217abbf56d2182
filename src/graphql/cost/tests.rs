use async_graphql::Variables;
use async_graphql::parser::parse_query;
use serde_json::json;

use super::count::INTROSPECTION_COST;
use super::{CostModel, UNPAGED_LIST_SIZES};
use crate::config::Limits;

fn model() -> CostModel {
    CostModel::of_served_schema()
}

fn cost_with(
    query: &str,
    operation_name: Option<&str>,
    variables: serde_json::Value,
) -> Option<u64> {
    let document = parse_query(query).expect("the test query parses");
    model().cost_of(&document, operation_name, &Variables::from_json(variables))
}

fn cost(query: &str) -> u64 {
    cost_with(query, None, json!({})).expect("the document has one operation")
}

#[test]
fn every_list_field_has_a_page_argument_or_a_size() {
    assert_eq!(
        model().unlisted_lists(),
        &[] as &[String],
        "give these lists a page argument or a size in UNPAGED_LIST_SIZES"
    );
}

#[test]
fn every_size_in_the_table_is_of_an_unpaged_list_of_the_schema() {
    let model = model();
    for (type_name, field_name, _) in UNPAGED_LIST_SIZES {
        assert!(
            model.is_unpaged_list(type_name, field_name),
            "{type_name}.{field_name} is not an unpaged list of the schema"
        );
    }
}

#[test]
fn pages_multiply_what_their_items_select_and_aliases_add_up() {
    let one = "contacts(projectId: $p, first: 100) { edges { node {
        chats(first: 100) { edges { node { id } } } history(first: 100) { events { id } } } } }";
    // chats 100 × (1 + edges (1 + node (1 + 1))), history 100 × (1 +
    // events (1 + 1)), node and edges 1 each, the page 100 × (1 + 702),
    // and the scan a list of contacts may cost.
    assert_eq!(cost(&format!("query($p: ID!) {{ {one} }}")), 70_300 + 1_000);
    let aliases: String = (0..200).map(|i| format!("a{i}: {one} ")).collect();
    assert_eq!(cost(&format!("query($p: ID!) {{ {aliases} }}")), 14_260_000);
}

#[test]
fn unpaged_lists_cost_their_largest_size() {
    assert_eq!(cost("{ me { id projects { id } } }"), 1 + 1 + 100 * 2);
    assert_eq!(
        cost("{ formQuestions(projectId: \"p\") { options } }"),
        50 * (1 + 50)
    );
    let nested =
        "{ me { projects { members { agent { projects { members { agent { id } } } } } } } }";
    assert!(cost(nested) > 300_000_000, "{}", cost(nested));
}

#[test]
fn page_sizes_come_from_variables_defaults_and_the_schema() {
    let query = "query($n: Int = 7) { contacts(projectId: \"p\", first: $n) { nodes { id } } }";
    let scan = 1_000;
    assert_eq!(cost_with(query, None, json!({})), Some(7 * 3 + scan));
    assert_eq!(
        cost_with(query, None, json!({"n": 30})),
        Some(30 * 3 + scan)
    );
    assert_eq!(
        cost_with(query, None, json!({"n": null})),
        Some(20 * 3 + scan)
    );
    assert_eq!(
        cost("{ contacts(projectId: \"p\", last: 40) { nodes { id } } }"),
        40 * 3 + scan
    );
    assert_eq!(
        cost("{ contacts(projectId: \"p\") { nodes { id } } }"),
        20 * 3 + scan
    );
    // `chats` declares its default in the schema.
    assert_eq!(cost("{ contact(id: \"c\") { chats { id } } }"), 1 + 20 * 2);
    assert_eq!(
        cost("{ contacts(projectId: \"p\", first: -5) { nodes { id } } }"),
        scan
    );
}

#[test]
fn only_the_operation_that_runs_is_counted() {
    let document = "query cheap { me { id } } query costly { contacts(projectId: \"p\", first: 100) { nodes { id } } }";
    assert_eq!(cost_with(document, Some("cheap"), json!({})), Some(2));
    assert_eq!(
        cost_with(document, Some("costly"), json!({})),
        Some(300 + 1_000)
    );
    assert_eq!(cost_with(document, None, json!({})), None);
    assert_eq!(cost_with(document, Some("missing"), json!({})), None);
}

#[test]
fn fragments_are_expanded_where_they_are_spread() {
    let query = "query { contacts(projectId: \"p\", first: 10) { nodes { ...Detail ... on Contact { email } } } }
        fragment Detail on Contact { name chats(first: 5) { edges { node { id } } } }";
    // Each of 10 contacts: nodes 1, name 1, chats 5 × (1 + 3), email 1;
    // and the scan of the list.
    assert_eq!(cost(query), 10 * (1 + 1 + 1 + 20 + 1) + 1_000);
}

#[test]
fn fragments_spread_twice_over_are_counted_without_walking_each_copy() {
    let mut query = String::from("{ me { ...F0 } }");
    for level in 0..40 {
        query.push_str(&format!(
            " fragment F{level} on Agent {{ ...F{next} ...F{next} }}",
            next = level + 1
        ));
    }
    query.push_str(" fragment F40 on Agent { id }");
    assert_eq!(cost(&query), 1 + (1 << 40));
}

#[test]
fn counts_and_mutations_cost_the_work_they_do() {
    // A count reads every contact the filter matches.
    assert_eq!(
        cost("{ contacts(projectId: \"p\", first: 1) { totalCount } }"),
        1 + 10_001 + 1_000
    );
    // Once per page, whatever its size.
    assert_eq!(
        cost("{ contacts(projectId: \"p\", first: 50) { totalCount nodes { id } } }"),
        50 * (1 + 2) + 10_001 + 1_000
    );
    let counts: String = (0..5)
        .map(|i| format!("c{i}: contacts(projectId: \"p\", first: 1) {{ totalCount }} "))
        .collect();
    assert!(cost(&format!("{{ {counts} }}")) > Limits::default().max_query_cost);
    // Aliased mutations add up.
    let exports: String = (0..600)
        .map(|i| format!("e{i}: exportContacts(projectId: \"p\", from: \"2026-01-01\", to: \"2026-01-02\") {{ id }} "))
        .collect();
    assert!(cost(&format!("mutation {{ {exports} }}")) > Limits::default().max_query_cost);
}

#[test]
fn a_fragment_cycle_does_not_hang_the_count() {
    let query = "{ me { ...A } } fragment A on Agent { id ...B } fragment B on Agent { name ...A }";
    assert_eq!(cost(query), 3);
}

/// graphql-js's `getIntrospectionQuery()`, as GraphiQL and codegen send it.
const INTROSPECTION_QUERY: &str =
    include_str!("../../../tests/support/introspection_query.graphql");

#[test]
fn the_standard_introspection_query_is_within_the_default_limit() {
    let cost = cost(INTROSPECTION_QUERY);
    assert_eq!(cost, INTROSPECTION_COST);
    assert!(cost <= Limits::default().max_query_cost);
}
