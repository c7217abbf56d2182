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

/// What the schema leaves undescribed: each type, field, argument, input
/// field and enum value should tell a person reading the Docs panel what it
/// is. The built-in scalars and directives describe themselves.
fn undescribed(sdl: &str) -> Vec<String> {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    const BUILT_IN: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];
    // async-graphql's generic connection types: their fields describe
    // themselves, the type itself takes no description (the registry's
    // override does not reach them).
    const GENERIC_CONNECTIONS: [&str; 2] = ["ExportJobConnection", "NotificationConnection"];
    let document = parse_schema(sdl).expect("the served SDL parses");
    let mut missing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if BUILT_IN.contains(&name) {
            continue;
        }
        // The root types are named by the schema, their fields describe
        // what they do.
        let is_root = matches!(name, "QueryRoot" | "MutationRoot" | "SubscriptionRoot");
        if ty.description.is_none() && !is_root && !GENERIC_CONNECTIONS.contains(&name) {
            missing.push(name.to_owned());
        }
        match &ty.kind {
            TypeKind::Object(object) => {
                for field in &object.fields {
                    let field = &field.node;
                    let at = format!("{name}.{}", field.name.node);
                    if field.description.is_none() {
                        missing.push(at.clone());
                    }
                    for argument in &field.arguments {
                        if argument.node.description.is_none() {
                            missing.push(format!("{at}({})", argument.node.name.node));
                        }
                    }
                }
            }
            TypeKind::InputObject(input) => {
                for field in &input.fields {
                    if field.node.description.is_none() {
                        missing.push(format!("{name}.{}", field.node.name.node));
                    }
                }
            }
            TypeKind::Enum(enumeration) => {
                for value in &enumeration.values {
                    if value.node.description.is_none() {
                        missing.push(format!("{name}.{}", value.node.value.node));
                    }
                }
            }
            _ => {}
        }
    }
    missing
}

#[test]
fn every_type_field_argument_and_enum_value_is_described() {
    let missing = undescribed(&contacts::graphql::sdl());
    assert!(missing.is_empty(), "undescribed: {}", missing.join(", "));
}
