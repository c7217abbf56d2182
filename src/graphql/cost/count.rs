//! Counting a document's rows: the walk over the operation that will run,
//! with the request's variables, fragments expanded.

use crate::graphql::operation::chosen_operation;
use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Number, Value, Variables};

use super::shapes::{CostModel, ONCE_PER_PAGE, PAGE_ARGUMENTS, Size};

/// What an introspection field (`__schema`, `__type`) costs, whatever it
/// selects: it reads the schema, which is bounded, not the data. The
/// standard introspection query of GraphQL tools asks for one `__schema`.
pub(super) const INTROSPECTION_COST: u64 = 1_000;

impl CostModel {
    /// The rows the operation named `operation_name` (or the document's
    /// only one) may read, or `None` when there is no such operation: the
    /// executor refuses that document on its own.
    pub fn cost_of(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<u64> {
        let operation = chosen_operation(document, operation_name)?;
        let mut walk = Walk {
            model: self,
            document,
            operation,
            variables,
            fragment_costs: HashMap::new(),
            fragment_once: HashMap::new(),
            expanding: HashSet::new(),
        };
        Some(walk.selections(self.root(operation.ty), &operation.selection_set.node))
    }
}

struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    /// A fragment costs the same wherever it is spread: counted once, so
    /// that fragments spreading fragments twice over cannot make the walk
    /// itself exponential.
    fragment_costs: HashMap<&'a str, u64>,
    /// The same for what a fragment holds that reads once per page.
    fragment_once: HashMap<&'a str, u64>,
    /// Fragments being expanded: validation refuses cycles, and this keeps
    /// the walk finite should one get through.
    expanding: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selections(&mut self, type_name: &str, set: &'a SelectionSet) -> u64 {
        set.items.iter().fold(0, |total, selection| {
            total.saturating_add(self.selection(type_name, &selection.node))
        })
    }

    fn selection(&mut self, type_name: &str, selection: &'a Selection) -> u64 {
        match selection {
            Selection::Field(field) => self.field(type_name, &field.node),
            Selection::InlineFragment(inline) => {
                let on = inline
                    .node
                    .type_condition
                    .as_ref()
                    .map_or(type_name, |condition| condition.node.on.node.as_str());
                self.selections(on, &inline.node.selection_set.node)
            }
            Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
        }
    }

    fn fragment(&mut self, name: &'a Name) -> u64 {
        if let Some(cost) = self.fragment_costs.get(name.as_str()) {
            return *cost;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        if !self.expanding.insert(name.as_str()) {
            return 0;
        }
        let cost = self.selections(
            &fragment.node.type_condition.node.on.node,
            &fragment.node.selection_set.node,
        );
        self.expanding.remove(name.as_str());
        self.fragment_costs.insert(name.as_str(), cost);
        cost
    }

    fn field(&mut self, type_name: &str, field: &'a Field) -> u64 {
        let name = field.name.node.as_str();
        if name == "__typename" {
            return 1;
        }
        if name.starts_with("__") {
            return INTROSPECTION_COST;
        }
        let model = self.model;
        let Some(shape) = model.field(type_name, name) else {
            // Not a field of a known object (validation has passed, so a
            // union or interface member): its selections still count.
            return self
                .selections("", &field.selection_set.node)
                .saturating_add(1);
        };
        let children = self.selections(&shape.returns, &field.selection_set.node);
        let items = match shape.size {
            Size::One => 1,
            Size::AtMost(most) => most,
            Size::Page { default } => self.page_size(field).unwrap_or(default),
        };
        let once = self.once_per_page(&shape.returns, &field.selection_set.node);
        items
            .saturating_mul(children.saturating_sub(once).saturating_add(1))
            .saturating_add(once)
            .saturating_add(model.scan_cost(type_name, name))
    }

    /// What the fields of `set` that read once per page (a count) cost, so
    /// that the page size does not multiply them.
    fn once_per_page(&mut self, type_name: &str, set: &'a SelectionSet) -> u64 {
        set.items.iter().fold(0, |total, selection| {
            let once = match &selection.node {
                Selection::Field(field)
                    if ONCE_PER_PAGE.contains(&(type_name, field.node.name.node.as_str())) =>
                {
                    self.field(type_name, &field.node)
                }
                Selection::Field(_) => 0,
                Selection::InlineFragment(inline) => {
                    self.once_per_page(type_name, &inline.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment_once_per_page(&spread.node.fragment_name.node)
                }
            };
            total.saturating_add(once)
        })
    }

    /// `once_per_page` of a fragment, worked out once like its cost.
    fn fragment_once_per_page(&mut self, name: &'a Name) -> u64 {
        if let Some(once) = self.fragment_once.get(name.as_str()) {
            return *once;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        if !self.expanding.insert(name.as_str()) {
            return 0;
        }
        let once = self.once_per_page(
            &fragment.node.type_condition.node.on.node,
            &fragment.node.selection_set.node,
        );
        self.expanding.remove(name.as_str());
        self.fragment_once.insert(name.as_str(), once);
        once
    }

    /// The largest of the field's `first` and `last`, variables resolved;
    /// none when both are absent or null.
    fn page_size(&self, field: &Field) -> Option<u64> {
        PAGE_ARGUMENTS
            .iter()
            .filter_map(|argument| field.get_argument(argument))
            .filter_map(|value| {
                let value = value
                    .node
                    .clone()
                    .into_const_with(|variable| self.variable(&variable).cloned().ok_or(()))
                    .ok()?;
                match value {
                    Value::Number(number) => Some(count_of_number(&number)),
                    _ => None,
                }
            })
            .max()
    }

    fn variable(&self, name: &Name) -> Option<&'a Value> {
        self.variables.get(name).or_else(|| {
            self.operation
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == *name)
                .and_then(|definition| definition.node.default_value())
        })
    }
}

/// Negative sizes ask for nothing (the resolver refuses them); sizes
/// beyond `u64` ask for everything.
fn count_of_number(number: &Number) -> u64 {
    number.as_u64().unwrap_or_else(|| {
        if number.as_i64().is_some() {
            0
        } else {
            number
                .as_f64()
                .map_or(u64::MAX, |value| value.max(0.0) as u64)
        }
    })
}
