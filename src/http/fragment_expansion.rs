//! How many fields a parsed document holds once its fragments are spread
//! in place, counted without spreading them, so that a short document of
//! fragments that spread each other twice cannot make validation walk
//! millions of fields.
//!
//! async-graphql's depth and complexity checks walk the document with every
//! fragment inlined: `fragment F1 { ...F2 ...F2 }` down 24 levels is 1 KB of
//! text and 16 million fields to walk, for tens of seconds of a worker.
//! Here each fragment's size is worked out once and reused.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Selections one document may hold with its fragments spread: far above
/// what a real client sends (the standard introspection query holds a few
/// hundred, the README's largest example fewer than a hundred).
pub const MAX_EXPANDED_FIELDS: u64 = 10_000;

/// Whether the document spreads a fragment it does not define, or
/// fragments spread each other in a cycle. async-graphql walks every path
/// of the document (its recursion-depth check) before validation reports
/// either, so such documents are refused first.
pub fn undefined_or_cyclic(document: &ExecutableDocument) -> bool {
    let fragments: HashMap<&Name, OwnSelections> = document
        .fragments
        .iter()
        .map(|(name, fragment)| (name, own_selections(&fragment.node.selection_set.node)))
        .collect();
    let operations_spread_unknown = document.operations.iter().any(|(_, operation)| {
        own_selections(&operation.node.selection_set.node)
            .spreads
            .iter()
            .any(|name| !fragments.contains_key(name))
    });
    if operations_spread_unknown
        || fragments
            .values()
            .flat_map(|own| &own.spreads)
            .any(|name| !fragments.contains_key(name))
    {
        return true;
    }
    // Kahn's algorithm: fragments left once every fragment spreading no
    // remaining one is peeled off lie on a cycle.
    let mut spreading: HashMap<&Name, usize> = fragments
        .iter()
        .map(|(name, own)| (*name, own.spreads.len()))
        .collect();
    let mut spread_by: HashMap<&Name, Vec<&Name>> = HashMap::new();
    for (name, own) in &fragments {
        for child in &own.spreads {
            spread_by.entry(child).or_default().push(name);
        }
    }
    let mut ready: Vec<&Name> = spreading
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut peeled = 0;
    while let Some(name) = ready.pop() {
        peeled += 1;
        for parent in spread_by.get(name).into_iter().flatten() {
            if let Some(count) = spreading.get_mut(parent) {
                *count -= 1;
                if *count == 0 {
                    ready.push(parent);
                }
            }
        }
    }
    peeled < fragments.len()
}

/// What a selection set holds before its spreads are expanded. Spreads
/// count as selections of their own: a fan-out of spreads that ends in no
/// field is still a fan-out for the walks after this one.
#[derive(Default)]
struct OwnSelections {
    selections: u64,
    spreads: Vec<Name>,
}

/// Fields and spreads of a selection set and everything nested in it. The
/// recursion follows the text's nesting, which the input guard bounds.
fn collect(set: &SelectionSet, into: &mut OwnSelections) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                into.selections += 1;
                collect(&field.node.selection_set.node, into);
            }
            Selection::FragmentSpread(spread) => {
                into.selections += 1;
                into.spreads.push(spread.node.fragment_name.node.clone());
            }
            Selection::InlineFragment(inline) => {
                into.selections += 1;
                collect(&inline.node.selection_set.node, into);
            }
        }
    }
}

fn own_selections(set: &SelectionSet) -> OwnSelections {
    let mut own = OwnSelections::default();
    collect(set, &mut own);
    own
}

/// The selections (fields, spreads, inline fragments) of every operation
/// of the document with fragments spread, saturating at `u64::MAX`. An
/// unknown fragment counts its spread alone and a cycle is cut where it
/// closes; `undefined_or_cyclic` refuses both before anything walks them.
pub fn expanded_fields(document: &ExecutableDocument) -> u64 {
    let fragments: HashMap<Name, OwnSelections> = document
        .fragments
        .iter()
        .map(|(name, fragment)| {
            (
                name.clone(),
                own_selections(&fragment.node.selection_set.node),
            )
        })
        .collect();
    let mut sizes: HashMap<Name, u64> = HashMap::new();
    let mut total: u64 = 0;
    for (_, operation) in document.operations.iter() {
        let own = own_selections(&operation.node.selection_set.node);
        let spread: u64 = own
            .spreads
            .iter()
            .map(|name| fragment_size(name, &fragments, &mut sizes))
            .fold(0, u64::saturating_add);
        total = total.saturating_add(own.selections).saturating_add(spread);
    }
    total
}

/// A fragment's size with its own spreads expanded, each fragment worked
/// out once. An explicit stack rather than recursion: a chain of a
/// thousand fragments must not deepen the call stack.
fn fragment_size(
    root: &Name,
    fragments: &HashMap<Name, OwnSelections>,
    sizes: &mut HashMap<Name, u64>,
) -> u64 {
    let mut stack: Vec<(Name, bool)> = vec![(root.clone(), false)];
    // Fragments on the current path: a spread back into one closes a cycle.
    let mut on_path: Vec<Name> = Vec::new();
    while let Some((name, children_done)) = stack.pop() {
        if sizes.contains_key(&name) {
            continue;
        }
        let Some(own) = fragments.get(&name) else {
            sizes.insert(name, 0);
            continue;
        };
        if children_done {
            on_path.retain(|on| *on != name);
            let spread = own
                .spreads
                .iter()
                .map(|child| sizes.get(child).copied().unwrap_or(0))
                .fold(0, u64::saturating_add);
            sizes.insert(name, own.selections.saturating_add(spread));
            continue;
        }
        if on_path.contains(&name) {
            continue;
        }
        on_path.push(name.clone());
        // Below its children on the stack: summed once they are known.
        stack.push((name, true));
        for child in &own.spreads {
            if !sizes.contains_key(child) && !on_path.contains(child) {
                stack.push((child.clone(), false));
            }
        }
    }
    sizes.get(root).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn fields_of(query: &str) -> u64 {
        expanded_fields(&parse_query(query).unwrap())
    }

    #[test]
    fn the_introspection_query_stays_far_below_the_bound() {
        let introspection = include_str!("../../tests/support/introspection_query.graphql");
        let fields = fields_of(introspection);
        assert!(fields > 50 && fields < MAX_EXPANDED_FIELDS / 10, "{fields}");
    }

    #[test]
    fn fields_fragments_and_inline_fragments_add_up() {
        assert_eq!(fields_of("{ a b { c d } }"), 4);
        assert_eq!(
            fields_of("{ a ...F ... on Q { e } } fragment F on Q { b { c } }"),
            6
        );
        assert_eq!(fields_of("{ ...F ...F } fragment F on Q { a b }"), 6);
    }

    #[test]
    fn fragments_spreading_each_other_twice_are_counted_without_walking_them() {
        let levels = 60;
        let fragments: String = (0..levels)
            .map(|i| format!("fragment F{i} on Q {{ ...F{} ...F{} }} ", i + 1, i + 1))
            .collect();
        let query = format!("{{ ...F0 }} {fragments} fragment F{levels} on Q {{ a }}");
        // 3 * 2^60 - 1 selections, counted at once.
        assert_eq!(fields_of(&query), 3 * (1 << levels) - 1);
        let saturating = format!(
            "{{ ...F0 }} {} fragment F70 on Q {{ a }}",
            (0..70)
                .map(|i| format!("fragment F{i} on Q {{ ...F{} ...F{} }} ", i + 1, i + 1))
                .collect::<String>()
        );
        assert_eq!(fields_of(&saturating), u64::MAX);
    }

    #[test]
    fn long_chains_cycles_and_unknown_fragments_end() {
        let chain: String = (0..5_000)
            .map(|i| format!("fragment F{i} on Q {{ a ...F{} }} ", i + 1))
            .collect();
        assert_eq!(
            fields_of(&format!("{{ ...F0 }} {chain} fragment F5000 on Q {{ a }}")),
            10_002
        );
        assert_eq!(
            fields_of("{ ...A } fragment A on Q { a ...B } fragment B on Q { b ...A }"),
            5
        );
        assert_eq!(fields_of("{ a ...Missing }"), 2);
    }

    #[test]
    fn unknown_fragments_and_cycles_are_found_before_anything_walks_them() {
        let refused = |query: &str| undefined_or_cyclic(&parse_query(query).unwrap());
        assert!(refused("{ a ...Missing }"));
        assert!(refused(
            "{ ...F } fragment F on Q { ... on Q { ...Missing } }"
        ));
        assert!(refused(
            "{ ...A } fragment A on Q { a ...B } fragment B on Q { b ...A }"
        ));
        assert!(refused("{ a } fragment Lonely on Q { ...Lonely }"));
        assert!(!refused(
            "{ ...A ...B } fragment A on Q { a ...B } fragment B on Q { b }"
        ));
        let fan_out: String = (0..22)
            .map(|i| format!("fragment F{i} on Q {{ ...F{} ...F{} }} ", i + 1, i + 1))
            .collect();
        assert!(refused(&format!(
            "{{ ...F0 }} {fan_out} fragment F22 on Q {{ ...Missing }}"
        )));
        assert!(!refused(&format!(
            "{{ ...F0 }} {fan_out} fragment F22 on Q {{ a }}"
        )));
    }
}
